"""The few facts every consumer reads from an encoded frame's `Gst.Buffer`, in one place.

The rules that act on these facts (start at a keyframe, rebase, interleave) live in
`streamwarden.media` and take plain integers; this module is the only translation between a
buffer and those integers: "not set" is `Gst.CLOCK_TIME_NONE` here and `None` there.

Everything is looked up once at import: attribute access on `Gst` goes through gi's override
proxy (about 1 µs each), and these run for every frame of every stream.
"""

from __future__ import annotations

from streamwarden.gst.init import Gst

CLOCK_TIME_NONE: int = Gst.CLOCK_TIME_NONE
DELTA_UNIT = Gst.BufferFlags.DELTA_UNIT  # also what `identity drop-buffer-flags` takes
NO_FLAGS = Gst.BufferFlags(0)
# What a depayloader or demuxer sets on the first frame after lost data (a reconnect's first
# frame carries it too): the frame decodes with errors until the next keyframe.
_DAMAGE = Gst.BufferFlags.DISCONT | Gst.BufferFlags.CORRUPTED
# A copy that shares the memory (no bytes copied) and keeps flags, timestamps and metas: the
# source buffer belongs to the camera's tee and other consumers, so it is never retimed itself.
_SHARE = (Gst.BufferCopyFlags.FLAGS | Gst.BufferCopyFlags.TIMESTAMPS | Gst.BufferCopyFlags.META
          | Gst.BufferCopyFlags.MEMORY)
_NONE = CLOCK_TIME_NONE


def caps_facts(caps: Gst.Caps | None) -> dict[str, str | int | float | None]:
    """What a stream's caps say, as plain values: media type, size, rate, AAC version."""
    if caps is None or caps.get_size() == 0:
        return {"name": None}
    s = caps.get_structure(0)
    facts: dict[str, str | int | float | None] = {"name": s.get_name()}
    for key in ("width", "height", "mpegversion"):
        ok, value = s.get_int(key)
        facts[key] = value if ok else None
    ok, num, den = s.get_fraction("framerate")
    facts["framerate"] = num / den if ok and den and num else None
    return facts


def is_keyframe(buffer: Gst.Buffer) -> bool:
    """A frame that decodes on its own (for audio every frame is one)."""
    return not buffer.has_flags(DELTA_UNIT)


def timestamps(buffer: Gst.Buffer) -> tuple[int | None, int | None]:
    """(pts, dts) in ns, `None` where the buffer carries none."""
    pts, dts = buffer.pts, buffer.dts
    return (None if pts == _NONE else pts), (None if dts == _NONE else dts)


def decode_time(buffer: Gst.Buffer) -> int | None:
    """DTS where set, else PTS, else None (ns)."""
    dts = buffer.dts
    if dts != _NONE:
        return dts
    pts = buffer.pts
    return pts if pts != _NONE else None


def is_damaged(buffer: Gst.Buffer) -> bool:
    """The frame follows lost data (or is marked corrupted)."""
    return bool(buffer.get_flags() & _DAMAGE)


def decode_order_key(buffer: Gst.Buffer) -> int:
    """Where a frame sorts among its peers: DTS where set, else PTS, else 0 (first)."""
    dts = buffer.dts
    if dts != _NONE:
        return dts
    pts = buffer.pts
    return pts if pts != _NONE else 0


def same_caps(a: Gst.Caps, b: Gst.Caps) -> bool:
    """Equal caps. Consecutive samples carry the same GstCaps, and `==` on gi's wrappers
    compares those pointers (15 ns) before `is_equal` compares contents (200 ns)."""
    return a == b or a.is_equal(b)


def retimed(buffer: Gst.Buffer, pts: int, dts: int | None, size: int | None = None) -> Gst.Buffer:
    """A copy of `buffer` sharing its memory, with new timestamps (a DTS of None stays unset).

    `size` when the caller already knows it (the recorder's ring does): one call less."""
    copy = buffer.copy_region(_SHARE, 0, buffer.get_size() if size is None else size)
    copy.pts = pts
    if dts is not None:
        copy.dts = dts
    return copy
