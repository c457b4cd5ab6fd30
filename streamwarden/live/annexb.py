"""H.264 byte-stream (Annex B) access units → MP4 samples and an avcC, in plain Python.

RTSP, RTMP and MP4 sources reach the tee as "avc" (length-prefixed, SPS/PPS in the caps'
codec_data), which MP4 takes as is. MPEG-TS sources (SRT, HTTP) arrive as byte-stream with
start codes and in-band SPS/PPS; this turns each access unit into a 4-byte length-prefixed
sample without parameter sets or access unit delimiters, and collects the SPS/PPS for the
init segment. Done here rather than with an `h264parse` in the live consumer because an
h264parse there answers the tee's caps queries with "H.264 only", which would stop a camera
that turns out to send H.265 from linking at all.
"""

from __future__ import annotations

import re
import struct

NAL_SPS, NAL_PPS, NAL_AUD = 7, 8, 9
_START = re.compile(b"\x00\x00\x01")


def split_nals(data: bytes) -> list[bytes]:
    """The NAL units of one Annex B access unit (start codes and trailing zeros removed)."""
    starts = [m.end() for m in _START.finditer(data)]
    nals = []
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        nal = data[start:end].rstrip(b"\x00")  # a 4-byte start code leaves one zero behind
        if nal:
            nals.append(nal)
    return nals


def avcc_record(sps: bytes, pps: bytes) -> bytes:
    """AVCDecoderConfigurationRecord for one SPS and one PPS, 4-byte NAL lengths."""
    if len(sps) < 4:
        raise ValueError("SPS too short")
    return (bytes([1, sps[1], sps[2], sps[3], 0xFF, 0xE1]) + struct.pack(">H", len(sps)) + sps
            + b"\x01" + struct.pack(">H", len(pps)) + pps)


class AnnexBConverter:
    """Keeps the latest SPS/PPS; `convert` returns (sample, avcC if the parameters changed)."""

    def __init__(self) -> None:
        self.sps: bytes | None = None
        self.pps: bytes | None = None

    def convert(self, data: bytes) -> tuple[bytes, bytes | None]:
        sample = bytearray()
        sps, pps = self.sps, self.pps
        for nal in split_nals(data):
            kind = nal[0] & 0x1F
            if kind == NAL_SPS:
                sps = nal
            elif kind == NAL_PPS:
                pps = nal
            elif kind != NAL_AUD:
                sample += struct.pack(">I", len(nal)) + nal
        changed = None
        if sps is not None and pps is not None and (sps, pps) != (self.sps, self.pps):
            changed = avcc_record(sps, pps)
        self.sps, self.pps = sps, pps
        return bytes(sample), changed
