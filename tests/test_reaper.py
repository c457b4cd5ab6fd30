"""The reaper stops detached elements off the GStreamer thread; a stuck one holds up none.

Real GStreamer elements: a bin whose shutdown blocks (as a source deadlocked in its own
teardown does) and a live test source with a streaming thread of its own.
"""

from __future__ import annotations

import threading
import time

from streamwarden.gst.init import GObject, Gst
from streamwarden.gst.reaper import Reaper
from tests.conftest import wait_for


class StuckBin(Gst.Bin):
    """A bin whose READY→NULL change waits until the test releases it."""

    __gtype_name__ = "StreamwardenTestStuckBin"

    def __init__(self, release: threading.Event):
        super().__init__()
        self.release = release

    def do_change_state(self, transition: Gst.StateChange) -> Gst.StateChangeReturn:
        if transition == Gst.StateChange.READY_TO_NULL:
            self.release.wait(30)
        return Gst.Bin.do_change_state(self, transition)


def live_source() -> Gst.Bin:
    bin_ = Gst.parse_bin_from_description("videotestsrc is-live=true ! fakesink sync=false",
                                          False)
    pipeline = Gst.Pipeline.new(None)
    pipeline.add(bin_)
    pipeline.set_state(Gst.State.PLAYING)
    wait_for(lambda: bin_.get_state(0)[1] == Gst.State.PLAYING, 5, message="playing")
    pipeline.remove(bin_)  # orphaned, still running: what the reaper is handed
    return bin_


def test_a_stuck_disposal_does_not_hold_up_the_ones_behind_it() -> None:
    assert GObject.type_from_name("StreamwardenTestStuckBin")
    release = threading.Event()
    reaper = Reaper(stuck_after=0.5)
    try:
        stuck = StuckBin(release)
        stuck.set_state(Gst.State.READY)
        running = live_source()
        reaper.dispose(stuck, "stuck source")
        reaper.dispose(running, "healthy source")
        started = time.monotonic()
        wait_for(lambda: running.get_state(0)[1] == Gst.State.NULL, 5,
                 message="the healthy source stopped behind the stuck one")
        assert time.monotonic() - started < 3
        assert reaper.stuck == 1
        assert reaper.workers == 2
        release.set()
        assert reaper.wait_idle(5)
        wait_for(lambda: reaper.workers == 1, 5, message="the extra worker ended")
    finally:
        release.set()
        reaper.close()


def test_disposals_in_order_need_one_worker() -> None:
    reaper = Reaper(stuck_after=5)
    try:
        sources = [live_source() for _ in range(3)]
        for source in sources:
            reaper.dispose(source)
        assert reaper.wait_idle(5)
        assert all(s.get_state(0)[1] == Gst.State.NULL for s in sources)
        assert reaper.stuck == 0 and reaper.workers == 1
    finally:
        reaper.close()
