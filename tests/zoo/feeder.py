"""Pushing a clip's units into a live media's appsrc elements at real-time pace, in a loop.

Video units go out at their decode time with their own PTS and DTS (so B-frame streams keep
their reordering), audio at its PTS. Every video unit is stamped as it leaves with the next
sequence number of the camera process and the wall time, and logged, so a test knows exactly
what was sent and when. Stalls skip the units that fall due inside them.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from typing import TextIO

from streamwarden.demo.stamp import stamp_access_unit
from streamwarden.gst.init import Gst
from tests.zoo.clip import Clip, Unit
from tests.zoo.faults import Clock, StallPlan
from tests.zoo.nal import split_annexb, to_annexb, to_length_prefixed
from tests.zoo.spec import RtspBehaviour

log = logging.getLogger(__name__)


class SentLog:
    """One line per video unit sent: `seq wall_time dts_s pts_s keyframe part` (shared)."""

    def __init__(self, handle: TextIO | None, first: int = 0):
        self._handle = handle
        self._lock = threading.Lock()
        self._sequence = itertools.count(first)

    def next(self) -> int:
        with self._lock:
            return next(self._sequence)

    def write(self, seq: int, wall: float, unit: Unit, dts: int, pts: int) -> None:
        if self._handle is not None:
            with self._lock:
                self._handle.write(f"{seq} {wall:.6f} {dts / 1e9:.6f} {pts / 1e9:.6f} "
                                   f"{int(unit.keyframe)} {unit.part}\n")
                self._handle.flush()


def schedule(clip: Clip) -> Iterator[tuple[int, int, Unit]]:
    """(due_ns, track, unit) forever: video (track 0) by DTS, audio (1) by PTS, looped."""
    for loop in itertools.count():
        base = loop * clip.loop_ns
        video = ((base + u.dts, 0, u) for u in clip.video)
        audio = ((base + u.pts, 1, u) for u in clip.audio if u.pts < clip.loop_ns)
        yield from heapq.merge(video, audio, key=lambda e: (e[0], e[1]))


class Feeder:
    """One media's sender thread."""

    def __init__(self, clip: Clip, behaviour: RtspBehaviour, sources: list[Gst.Element | None],
                 sent: SentLog):
        self._clip = clip
        self._mode = behaviour.parameter_sets
        self._sources = sources
        self._sent = sent
        self.stalls = StallPlan.of(behaviour)
        self._clock = Clock.of(behaviour)
        self._start = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zoo-feeder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def stall(self, seconds: float) -> None:
        self.stalls.add((time.monotonic_ns() - self._start) / 1e9, seconds)

    def _video_data(self, unit: Unit, seq: int, wall: float) -> bytes:
        sets = self._clip.parameter_sets[unit.part]
        inband = self._mode != "sdp" or unit.part > 0  # later parts' sets are not in the SDP
        data = unit.data
        if unit.keyframe and inband:
            data = to_annexb(list(sets)) + data
        data = stamp_access_unit(self._clip.spec.codec, data, seq, wall)
        return to_length_prefixed(split_annexb(data)) if self._mode == "sdp" else data

    def _offset(self) -> int | None:
        src = self._sources[0]
        clock = src.get_clock()
        return None if clock is None else clock.get_time() - src.get_base_time()

    def _run(self) -> None:
        offset = self._offset()
        while offset is None:  # wait for PLAYING, so the first unit sent is a keyframe
            if self._stop.wait(0.01):
                return
            offset = self._offset()
        self._start = time.monotonic_ns()
        for due, track, unit in schedule(self._clip):
            delay = (self._start + due - time.monotonic_ns()) / 1e9
            if (delay > 0 and self._stop.wait(delay)) or self._stop.is_set():
                return
            if self.stalls.stalled(due / 1e9) or self._sources[track] is None:
                continue
            loop_base = due - (unit.dts if track == 0 else unit.pts)
            dts = offset + self._clock.stamp(loop_base + unit.dts, due)
            pts = offset + self._clock.stamp(loop_base + unit.pts, due)
            if not self._push(track, unit, dts, pts, offset):
                return

    def _push(self, track: int, unit: Unit, dts: int, pts: int, offset: int) -> bool:
        data = unit.data
        if track == 0:
            seq, wall = self._sent.next(), time.time()
            data = self._video_data(unit, seq, wall)
            self._sent.write(seq, wall, unit, dts - offset, pts - offset)
        buf = Gst.Buffer.new_wrapped(data)
        buf.pts, buf.dts, buf.duration = pts, dts, unit.duration
        if not unit.keyframe:
            buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
        ret = self._sources[track].emit("push-buffer", buf)
        if ret != Gst.FlowReturn.OK:
            log.debug("zoo feeder stops: %s", ret)
        return ret == Gst.FlowReturn.OK
