"""Wall-clock and sequence stamps carried inside H.264/H.265 frames (SEI user data).

The synthetic camera stamps every video frame with its sequence number and the wall-clock
time it was sent, in an SEI "user data unregistered" message. The stamp survives RTP,
parsing, muxing and remuxing untouched, so a test can read any recorded file and know
exactly which camera frames it holds and when they were captured, with no decoding.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

STAMP_UUID = b"streamwarden-ts!"  # 16 bytes, no zero bytes: no emulation prevention needed
_STAMP = re.compile(re.escape(STAMP_UUID) + rb"(\d{10}):(\d{10}\.\d{6})")
_START_CODE = re.compile(b"\x00\x00\x01")


@dataclass(frozen=True)
class Stamp:
    sequence: int
    wall_time: float


def _sei_nal(codec: str, payload: bytes) -> bytes:
    body = bytes([5, len(STAMP_UUID) + len(payload)]) + STAMP_UUID + payload + b"\x80"
    header = b"\x06" if codec == "h264" else b"\x4e\x01"  # H.264 SEI / H.265 prefix SEI
    return b"\x00\x00\x00\x01" + header + body


def _first_vcl_offset(codec: str, data: bytes) -> int:
    """Byte offset of the start code of the first slice NAL unit (where the SEI goes)."""
    for match in _START_CODE.finditer(data):
        header = data[match.end()]
        nal_type = header & 0x1F if codec == "h264" else (header >> 1) & 0x3F
        is_vcl = nal_type in (1, 5) if codec == "h264" else nal_type < 32
        if is_vcl:
            start = match.start()
            return start - 1 if start > 0 and data[start - 1] == 0 else start
    return 0


def stamp_access_unit(codec: str, data: bytes, sequence: int, wall_time: float | None = None
                      ) -> bytes:
    """The access unit with a stamp SEI inserted before its first slice."""
    when = time.time() if wall_time is None else wall_time
    payload = f"{sequence % 10**10:010d}:{when:017.6f}".encode()
    offset = _first_vcl_offset(codec, data)
    return data[:offset] + _sei_nal(codec, payload) + data[offset:]


def read_stamps(data: bytes) -> list[Stamp]:
    """Every stamp found in a blob (an access unit, or a whole recorded file)."""
    return [Stamp(int(m.group(1)), float(m.group(2))) for m in _STAMP.finditer(data)]
