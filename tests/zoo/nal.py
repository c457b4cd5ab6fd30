"""H.264/H.265 NAL unit plumbing: length-prefixed (MP4) and Annex B forms, parameter sets.

Pure byte handling, no GStreamer or ffmpeg: cameras need to move parameter sets in or out of
access units and between the SDP (codec_data) and the stream, the way real cameras differ.
"""

from __future__ import annotations

import re

_START = re.compile(b"\x00\x00\x01")
START_CODE = b"\x00\x00\x00\x01"


def nal_type(codec: str, nal: bytes) -> int:
    return nal[0] & 0x1F if codec == "h264" else (nal[0] >> 1) & 0x3F


def is_parameter_set(codec: str, nal: bytes) -> bool:
    """SPS/PPS (H.264) or VPS/SPS/PPS (H.265)."""
    return nal_type(codec, nal) in ((7, 8) if codec == "h264" else (32, 33, 34))


def split_length_prefixed(data: bytes, size: int = 4) -> list[bytes]:
    nals, pos = [], 0
    while pos + size <= len(data):
        length = int.from_bytes(data[pos:pos + size], "big")
        nals.append(data[pos + size:pos + size + length])
        pos += size + length
    return nals


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B blob (trailing zero bytes of a 4-byte start code dropped)."""
    starts = [m.end() for m in _START.finditer(data)]
    nals = []
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        nals.append(data[start:end].rstrip(b"\x00") if i + 1 < len(starts) else data[start:end])
    return nals


def to_annexb(nals: list[bytes]) -> bytes:
    return b"".join(START_CODE + nal for nal in nals)


def to_length_prefixed(nals: list[bytes]) -> bytes:
    return b"".join(len(nal).to_bytes(4, "big") + nal for nal in nals)


def parameter_sets(codec: str, extradata: bytes) -> tuple[list[bytes], int]:
    """(parameter set NAL units, NAL length size) from an avcC or hvcC record."""
    if codec == "h264":
        length_size = (extradata[4] & 3) + 1
        count, pos, nals = extradata[5] & 0x1F, 6, []
        for group in range(2):
            if group == 1:
                count, pos = extradata[pos], pos + 1
            for _ in range(count):
                length = int.from_bytes(extradata[pos:pos + 2], "big")
                nals.append(extradata[pos + 2:pos + 2 + length])
                pos += 2 + length
        return nals, length_size
    length_size = (extradata[21] & 3) + 1
    arrays, pos, nals = extradata[22], 23, []
    for _ in range(arrays):
        count = int.from_bytes(extradata[pos + 1:pos + 3], "big")
        pos += 3
        for _ in range(count):
            length = int.from_bytes(extradata[pos:pos + 2], "big")
            nals.append(extradata[pos + 2:pos + 2 + length])
            pos += 2 + length
    return nals, length_size
