"""The recorder's batched path without a camera: the pump thread and drain-before-event order.

Frames wait in the recorder's appsinks until something drains them. These tests feed a
recorder bin by hand (the test thread plays the producer's streaming thread) with a pump that
never fires on its own, so every drain they see is one the recorder must do itself.
"""

from __future__ import annotations

import threading
from pathlib import Path

from streamwarden.gst.init import Gst
from streamwarden.gst.reaper import Reaper
from streamwarden.recording.pump import Pump
from streamwarden.recording.recorder import Recorder, RecorderSettings
from tests.conftest import wait_for

CAPS = "video/x-h264,stream-format=byte-stream,alignment=au,width=64,height=64"


class Counting:
    def __init__(self, fail: bool = False):
        self.calls = 0
        self.fail = fail
        self.called = threading.Event()

    def drain(self) -> None:
        self.calls += 1
        self.called.set()
        if self.fail:
            raise RuntimeError("broken recorder")


def test_pump_drains_every_member_and_stops_when_none_is_left():
    pump = Pump(interval=0.01)
    broken, healthy = Counting(fail=True), Counting()
    pump.register(broken)
    pump.register(healthy)
    pump.register(healthy)  # idempotent
    wait_for(lambda: healthy.calls >= 3 and broken.calls >= 3, 5,
             message="both members drained repeatedly, a failing one included")
    pump.unregister(broken)
    pump.unregister(healthy)
    wait_for(lambda: pump._thread is None, 5, message="pump thread exits when empty")
    again = Counting()
    pump.register(again)
    assert again.called.wait(5), "a new member starts the thread again"
    pump.unregister(again)


def _feeder(recorder: Recorder) -> tuple[Gst.Pipeline, Gst.Pad]:
    pipeline = Gst.Pipeline.new("feed")
    bin_ = recorder.build()
    pipeline.add(bin_)
    src = Gst.Pad.new("src", Gst.PadDirection.SRC)
    src.set_active(True)
    assert src.link(bin_.get_static_pad("video")) == Gst.PadLinkReturn.OK
    assert pipeline.set_state(Gst.State.PLAYING) != Gst.StateChangeReturn.FAILURE
    return pipeline, src


def _start_stream(src: Gst.Pad, stream_id: str) -> None:
    src.push_event(Gst.Event.new_stream_start(stream_id))
    src.push_event(Gst.Event.new_caps(Gst.Caps.from_string(CAPS)))
    segment = Gst.Segment()
    segment.init(Gst.Format.TIME)
    src.push_event(Gst.Event.new_segment(segment))


def _push_frames(src: Gst.Pad, count: int, first: int = 0) -> None:
    for index in range(first, first + count):
        buffer = Gst.Buffer.new_wrapped(b"\x00\x00\x00\x01\x65" + bytes(64))
        buffer.pts = buffer.dts = index * Gst.SECOND // 25
        buffer.duration = Gst.SECOND // 25
        if index % 25:
            buffer.set_flags(Gst.BufferFlags.DELTA_UNIT)
        assert src.push(buffer) == Gst.FlowReturn.OK


def test_frames_wait_in_c_until_drained_and_an_event_drains_first(tmp_path: Path):
    reaper = Reaper()
    pump = Pump(interval=3600)  # never on its own: only the recorder's own drains count
    recorder = Recorder("cam", RecorderSettings(tmp_path, "mp4", 10, 1, 10), reaper, pump=pump)
    pipeline, src = _feeder(recorder)
    try:
        _start_stream(src, "first")
        _push_frames(src, 30)
        assert len(recorder.ring.entries) == 0, "frames wait in the appsink, not in Python"
        recorder.drain()
        assert len(recorder.ring.entries) == 30

        _push_frames(src, 10, first=30)
        # A reconnect: the frames of the old stream are taken before the new stream-start
        # marks the change, so the change lands on the first frame of the new stream.
        _start_stream(src, "second")
        assert len(recorder.ring.entries) == 40
        assert recorder.policy.discontinuity
        _push_frames(src, 5)
        recorder.drain()
        assert len(recorder.ring.entries) == 45
        assert not recorder.policy.discontinuity
    finally:
        recorder.disposed()
        pipeline.set_state(Gst.State.NULL)
        reaper.close()
