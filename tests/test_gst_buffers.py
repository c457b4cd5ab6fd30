"""gst/buffers.py on real Gst.Buffers: the one translation between a buffer and the integers
the media rules take."""

from __future__ import annotations

from streamwarden.gst.buffers import (
    DELTA_UNIT,
    decode_order_key,
    is_keyframe,
    retimed,
    same_caps,
    timestamps,
)
from streamwarden.gst.init import Gst


def buffer(pts: int | None = None, dts: int | None = None, delta: bool = False) -> Gst.Buffer:
    buf = Gst.Buffer.new_wrapped(b"\x00\x00\x00\x01\x65" + bytes(20))
    if pts is not None:
        buf.pts = pts
    if dts is not None:
        buf.dts = dts
    if delta:
        buf.set_flags(DELTA_UNIT)
    return buf


def test_keyframes_timestamps_and_decode_order():
    assert is_keyframe(buffer()) and not is_keyframe(buffer(delta=True))
    assert timestamps(buffer()) == (None, None)
    assert timestamps(buffer(120, 40)) == (120, 40)
    assert timestamps(buffer(pts=7)) == (7, None)
    assert [decode_order_key(b) for b in (buffer(120, 40), buffer(pts=7), buffer())] == [40, 7, 0]


def test_retimed_is_a_copy_sharing_memory_the_source_keeps_its_times():
    source = buffer(10 * Gst.SECOND, 9 * Gst.SECOND, delta=True)
    copy = retimed(source, 5, 3)
    assert (copy.pts, copy.dts) == (5, 3) and not is_keyframe(copy), "flags kept"
    assert (source.pts, source.dts) == (10 * Gst.SECOND, 9 * Gst.SECOND)
    assert copy.peek_memory(0) == source.peek_memory(0), "the same memory, no bytes copied"
    ok, mapped = copy.map(Gst.MapFlags.READ)
    assert ok and bytes(mapped.data) == b"\x00\x00\x00\x01\x65" + bytes(20)
    copy.unmap(mapped)
    no_dts = retimed(buffer(pts=10), 2, None, size=5)
    assert (no_dts.pts, no_dts.dts, no_dts.get_size()) == (2, Gst.CLOCK_TIME_NONE, 5)


def test_same_caps_by_pointer_or_by_content():
    caps = Gst.Caps.from_string("video/x-h264,width=64,height=64")
    assert same_caps(caps, caps)
    assert same_caps(caps, Gst.Caps.from_string("video/x-h264,width=64,height=64"))
    assert not same_caps(caps, Gst.Caps.from_string("video/x-h264,width=32,height=64"))
