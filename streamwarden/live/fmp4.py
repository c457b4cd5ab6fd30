"""A tiny fragmented-MP4 writer for one H.264 or H.265 track: what browsers' Media Source
Extensions eat.

Why our own and not `mp4mux`: the live view wants one fragment per frame (latency of one
frame, not one fragment duration), every fragment's first sample known to be a keyframe or
not (so a late joiner starts at one), and a new init segment whenever the camera's SPS/PPS
change (a reconnect with new caps) — all trivial here and awkward through mp4mux's
properties. Nothing is decoded or re-encoded: the samples are the camera's access units,
length-prefixed ("avc"/"hvc1"/"hev1" stream formats) as the parsers hand them over.

Layout: init = ftyp + moov (mvhd, trak/…/stsd/avc1+avcC or hvc1|hev1+hvcC, mvex/trex); then
per frame moof (mfhd, traf: tfhd default-base-is-moof, tfdt v1, trun v1 with one sample and
its composition offset, signed: B-frames) + mdat.
"""

from __future__ import annotations

import struct

TIMESCALE = 90_000
TRACK_ID = 1

_KEY_FLAGS = 0x02000000  # depends on no other sample, sync sample
_DELTA_FLAGS = 0x01010000  # depends on others, not a sync sample


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def codec_string(avcc: bytes) -> str:
    """RFC 6381 codec for MSE from avcC: profile, constraints, level (e.g. avc1.64001f)."""
    if len(avcc) < 4 or avcc[0] != 1:
        raise ValueError("not an AVCDecoderConfigurationRecord")
    return f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def hevc_codec_string(hvcc: bytes, entry: str = "hvc1") -> str:
    """The codec for MSE from hvcC (ISO/IEC 14496-15 annex E), e.g. hvc1.1.6.L93.B0: profile
    space and profile, compatibility flags bit-reversed, tier and level, constraint bytes
    without the trailing zero ones."""
    if len(hvcc) < 23 or hvcc[0] != 1:
        raise ValueError("not an HEVCDecoderConfigurationRecord")
    space = "" if hvcc[1] >> 6 == 0 else "ABC"[(hvcc[1] >> 6) - 1]
    profile = hvcc[1] & 0x1F
    tier = "H" if hvcc[1] & 0x20 else "L"
    compatibility = int(f"{int.from_bytes(hvcc[2:6], 'big'):032b}"[::-1], 2)
    constraints = list(hvcc[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [entry, f"{space}{profile}", f"{compatibility:x}", f"{tier}{hvcc[12]}"]
    return ".".join(parts + [f"{c:X}" for c in constraints])


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def init_segment(config: bytes, width: int, height: int, entry: bytes = b"avc1") -> bytes:
    """ftyp + moov describing one video track: `entry` avc1 with `config` an avcC, or
    hvc1/hev1 with an hvcC; durations are unknown (live)."""
    record = b"avcC" if entry == b"avc1" else b"hvcC"
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso6", entry, b"mp41")
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0),
                    struct.pack(">IH10x", 0x10000, 0x100), _MATRIX, bytes(24),
                    struct.pack(">I", TRACK_ID + 1))
    tkhd = full_box(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0), bytes(8),
                    struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
                    struct.pack(">II", width << 16, height << 16))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, TIMESCALE, 0),
                    struct.pack(">HH", 0x55C4, 0))  # language "und"
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"streamwarden\0")
    vmhd = full_box(b"vmhd", 0, 1, bytes(8))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1),
                                 full_box(b"url ", 0, 1)))
    sample_entry = box(entry, bytes(6), struct.pack(">H", 1), bytes(16),
                       struct.pack(">HHIIIH", width, height, 0x480000, 0x480000, 0, 1),
                       bytes(32), struct.pack(">Hh", 0x18, -1), box(record, config))
    stbl = box(b"stbl", full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry),
               full_box(b"stts", 0, 0, bytes(4)), full_box(b"stsc", 0, 0, bytes(4)),
               full_box(b"stsz", 0, 0, bytes(8)), full_box(b"stco", 0, 0, bytes(4)))
    mdia = box(b"mdia", mdhd, hdlr, box(b"minf", vmhd, dinf, stbl))
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0)))
    return ftyp + box(b"moov", mvhd, box(b"trak", tkhd, mdia), mvex)


def fragment(sequence: int, decode_time: int, duration: int, composition_offset: int,
             keyframe: bool, sample: bytes) -> bytes:
    """moof + mdat carrying one access unit; times in TIMESCALE units."""
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", TRACK_ID))  # default-base-is-moof
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time))
    # data offset, duration, size, flags, composition offset present; data offset patched below
    trun_fields = struct.pack(">IiIIIi", 1, 0, duration, len(sample),
                              _KEY_FLAGS if keyframe else _DELTA_FLAGS, composition_offset)
    trun = full_box(b"trun", 1, 0x000F01, trun_fields)
    moof = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)),
               box(b"traf", tfhd, tfdt, trun))
    data_offset = len(moof) + 8  # from the start of moof to the sample inside mdat
    offset_at = len(moof) - len(trun) + 12 + 4  # trun header (12) + sample_count (4)
    moof = moof[:offset_at] + struct.pack(">i", data_offset) + moof[offset_at + 4:]
    return moof + struct.pack(">I4s", 8 + len(sample), b"mdat") + sample


def top_level_boxes(data: bytes) -> list[tuple[bytes, int]]:
    """(type, size) of each top-level box; for tests and sanity checks."""
    boxes, at = [], 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        if size < 8:
            raise ValueError(f"bad box size {size} at {at}")
        boxes.append((kind, size))
        at += size
    if at != len(data):
        raise ValueError("trailing bytes after the last box")
    return boxes
