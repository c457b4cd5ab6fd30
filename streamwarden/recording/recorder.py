"""The recording consumer: pre-roll ring, keyframe-clean start/stop, sessions, rotation.

Frames leave the producer's tees into an appsink per media kind, which holds them in C until
the recording pump (pump.py) drains them, a batch every 0.2 s. Each frame goes into the
pre-event ring and, while recording, into the current session (an appsrc-fed pipeline of its
own, see session.py). This is togglerecord plus smart-record:

- start: a session opens at a keyframe: the one at or before `now - pre_roll` from the ring,
  or, with no pre-roll, the first keyframe after the request. Never a partial GOP, never a
  frame from before the requested start (pre-roll aside).
- stop: at once; the session finalises its file (playable, correct duration).
- a reconnect (new stream-start) or new caps (new resolution/codec) while recording closes the
  session and opens a new one at the first keyframe after the change, from the ring, so no
  frame is lost and no file mixes two resolutions.
- a session that fails (disk full, write error) begins an outage (outage.py): reported once,
  retried (on a full disk only once there is room again, so no retry leaves an empty file),
  and over when data reaches the disk again; the cut segment is settled by the index and the
  gap stored. Nothing else stops.

Draining appends to the ring and pushes to the session under a short lock. It runs on the pump
thread; on a streaming thread before an event is handled (so a reconnect or EOS is seen after
the frames that preceded it); and on the GStreamer thread before a start or a stop (so a
start's "now" and a stop's last frame are exact, not up to one batch late). Sessions are
built, started and finished on the GStreamer thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamwarden.consumers.base import Consumer, appsink_buffer
from streamwarden.gst.init import GLib, Gst
from streamwarden.gst.reaper import Reaper
from streamwarden.recording.layout import start_time_from_name
from streamwarden.recording.outage import (
    SPACE_CHECK_S,
    Change,
    Gap,
    Outage,
    OutageTracker,
    resume_threshold,
)
from streamwarden.recording.pump import PUMP, Pump
from streamwarden.recording.ring import PrerollRing
from streamwarden.recording.session import RecordingSession, SessionCallbacks, SessionSettings

log = logging.getLogger("streamwarden.recording")

# Frames an appsink holds before it drops the oldest: 20 s of 25 fps video, several seconds
# of audio; far more than one pump interval, so only a stalled process ever drops.
APPSINK_MAX_BUFFERS = 500


@dataclass
class RecorderSettings:
    base_path: Path
    fmt: str
    segment_duration: float
    fragment_duration: float
    buffer_duration: float
    min_free: int | None = None
    file_mode: int = 0o600
    dir_mode: int = 0o700


@dataclass
class RecordRequest:
    reason: str  # continuous | manual | event
    requested_at: float  # monotonic
    pre_roll: float
    until: float | None  # monotonic stop time, None = until stopped
    opened: bool = False  # a session has been opened for this request


class SegmentListener:
    """Receives segment events (the index implements this)."""

    def segment_opened(self, stream_id: str, path: Path, start_wall: float, reason: str) -> None:
        """A segment file was opened."""

    def segment_closed(self, stream_id: str, path: Path, end_wall: float,
                       cut: bool = False) -> None:
        """A segment file was finalised, or (`cut`) ended by an error part-way."""

    def outage_started(self, stream_id: str, outage: Outage) -> None:
        """Recording stopped working (reported once per outage, not per retry)."""

    def outage_ongoing(self, stream_id: str, now: float) -> None:
        """The outage still goes on at `now` (every few seconds)."""

    def outage_ended(self, stream_id: str, gap: Gap,
                     began_earlier: Callable[[float], None]) -> None:
        """The outage is over; `began_earlier(seconds)` if the gap proves longer than `gap`."""


def _pts(buffer: Gst.Buffer) -> int:
    """The time a frame is due downstream (DTS where set), 0 when it has none."""
    if buffer.dts != Gst.CLOCK_TIME_NONE:
        return buffer.dts
    return buffer.pts if buffer.pts != Gst.CLOCK_TIME_NONE else 0


def free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


class Recorder(Consumer):
    kind = "recorder"
    wants_audio = True
    needs_eos_on_detach = True

    def __init__(self, stream_id: str, settings: RecorderSettings, reaper: Reaper,
                 listener: SegmentListener | None = None,
                 free_space: Callable[[Path], int] = free_bytes,
                 on_event: Callable[[dict], None] | None = None, pump: Pump = PUMP):
        super().__init__("recorder")
        self._pump = pump
        self._sinks: list[tuple[str, Gst.Element]] = []
        self.stream_id = stream_id
        self.settings = settings
        self._reaper = reaper
        self._listener = listener or SegmentListener()
        self._free_space = free_space
        self._emit = on_event or (lambda event: None)
        self._lock = threading.Lock()
        self.ring = PrerollRing(settings.buffer_duration)
        self._caps: dict[str, Gst.Caps] = {}
        self._session: RecordingSession | None = None
        self._finishing: list[RecordingSession] = []
        self._failed: list[RecordingSession] = []  # until their pipelines are down
        self._request: RecordRequest | None = None
        self._rotate_from: int | None = None  # ring seq where a new session must begin
        self._discont = False
        self._input_eos = False
        self._retry_at = 0.0
        self.outages = OutageTracker()
        self.segments = 0
        self.bytes_written = 0
        self._dropped_finished = 0

    # ---- GStreamer side --------------------------------------------------------------------

    def build(self) -> Gst.Bin:
        name = f"recorder-{self.stream_id}"
        self.bin = appsink_buffer(name, APPSINK_MAX_BUFFERS, self._on_event)
        self._sinks = [(kind, self.bin.get_by_name(f"{name}-{kind}"))
                       for kind in ("video", "audio")]
        self._pump.register(self)
        return self.bin

    def disposed(self) -> None:
        """The bin is gone: the pump stops draining it."""
        self._pump.unregister(self)

    def _on_event(self, _pad: Gst.Pad, info: Gst.PadProbeInfo, kind: str) -> Gst.PadProbeReturn:
        event_type = info.get_event().type
        if kind != "video" or event_type not in (Gst.EventType.STREAM_START, Gst.EventType.EOS):
            return Gst.PadProbeReturn.OK
        with self._lock:
            self._drain_locked()  # the frames before the event belong to the old stream
            if event_type == Gst.EventType.STREAM_START:
                self._discont = True  # a new source attempt: new timestamps, maybe new caps
            else:
                self._input_eos = True
                GLib.idle_add(self._stop_on_eos)
        return Gst.PadProbeReturn.OK

    def drain(self) -> None:
        """Take every frame waiting in the appsinks (pump thread, mostly)."""
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        pulled = {kind: self._pull_all(sink) for kind, sink in self._sinks}
        video, audio = pulled["video"], pulled["audio"]
        # One arrival time for the batch: every frame in it arrived at most one pump interval
        # earlier, and never after this moment (what start's "now" relies on).
        now, wall = time.monotonic(), time.time()
        if not audio:
            for buffer, caps in video:
                self._take("video", buffer, caps, now, wall)
            return
        # Both kinds waited in their own appsink: hand them on in timestamp order, as they
        # arrived, so the ring and the session see one interleaved stream.
        v = a = 0
        while v < len(video) or a < len(audio):
            if a >= len(audio) or (v < len(video) and _pts(video[v][0]) <= _pts(audio[a][0])):
                self._take("video", *video[v], now, wall)
                v += 1
            else:
                self._take("audio", *audio[a], now, wall)
                a += 1

    @staticmethod
    def _pull_all(sink: Gst.Element) -> list[tuple[Gst.Buffer, Gst.Caps]]:
        frames = []
        while True:
            sample = sink.try_pull_sample(0)
            if sample is None:
                return frames
            frames.append((sample.get_buffer(), sample.get_caps()))

    def _take(self, kind: str, buffer: Gst.Buffer, caps: Gst.Caps, now: float,
              wall: float) -> None:
        """One frame, in order: into the ring and, while recording, into the session."""
        previous = self._caps.get(kind)
        changed = kind == "video" and (
            self._discont or (previous is not None and not previous.is_equal(caps)))
        self._discont = self._discont and kind != "video"
        self._caps[kind] = caps
        entry = self.ring.append(kind, buffer, caps, now, wall)
        session = self._session
        if session is None or self._rotate_from is not None:
            return
        if changed and previous is not None:
            self._rotate_from = entry.seq
            GLib.idle_add(self._rotate)
            return
        if session.waiting_for_keyframe:
            if not (kind == "video" and entry.keyframe):
                return
            session.waiting_for_keyframe = False
        session.push(entry)

    def latest_keyframe(self) -> tuple[Gst.Buffer, Gst.Caps] | None:
        """The newest keyframe in the pre-event buffer (any thread), for snapshots."""
        with self._lock:
            entry = self.ring.latest_keyframe()
        return (entry.buffer, entry.caps) if entry is not None else None

    # ---- control (GStreamer thread) --------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self._request is not None

    def start(self, reason: str = "manual", pre_roll: float | None = None,
              duration: float | None = None, post_roll: float | None = None) -> None:
        """Start (or extend) recording. Idempotent: a running recording just keeps going."""
        self.drain()  # everything that arrived before the request is stamped before `now`
        now = time.monotonic()
        length = duration if duration is not None else post_roll
        until = now + length if length is not None else None
        request = self._request
        if request is not None:
            if request.until is not None:  # an event recording: extend or make it open-ended
                request.until = None if until is None else max(request.until, until)
                if reason != "event":
                    request.reason = reason
            return
        if pre_roll is None:
            pre_roll = 0.0
        self._request = RecordRequest(reason, now, min(pre_roll, self.settings.buffer_duration),
                                      until)
        log.info("stream %s: recording started (%s, pre-roll %gs)", self.stream_id, reason,
                 pre_roll, extra={"stream_id": self.stream_id, "event": "recording_started",
                                  "reason": reason})
        self._emit({"type": "recording", "stream_id": self.stream_id, "recording": True,
                    "reason": reason})
        self._open_session(self._request)

    def stop(self) -> None:
        if self._request is None:
            return
        self._request = None
        with self._lock:
            self._drain_locked()  # up to the last frame that arrived before the stop
            session, self._session = self._session, None
            self._rotate_from = None
        if session is not None:
            self._finish(session)
        # Not recording is no error: an outage ends here, or where a resumed session began.
        resumed = session.start_wall if session is not None else None
        self._report(self.outages.stopped(resumed or time.time()))
        log.info("stream %s: recording stopped", self.stream_id,
                 extra={"stream_id": self.stream_id, "event": "recording_stopped"})
        self._emit({"type": "recording", "stream_id": self.stream_id, "recording": False,
                    "reason": None})

    def _stop_on_eos(self) -> bool:
        self.stop()
        return False

    def _settle_failed(self) -> None:
        """Hand the files of failed sessions to the index (it repairs or removes them), also
        one a failing session opens before its pipeline is down."""
        for session in list(self._failed):
            stopped = session.stopped
            last = session.last_wall or time.time()
            for path in session.take_unfinished():
                if path not in session.announced:  # created, then the write failed
                    self._listener.segment_opened(self.stream_id, path,
                                                  start_time_from_name(path) or last,
                                                  session.settings.reason)
                self._listener.segment_closed(self.stream_id, path, last, cut=True)
            if stopped:
                self._failed.remove(session)

    def tick(self, now: float) -> None:
        if self._failed:
            self._settle_failed()
        request = self._request
        if request is None:
            return
        outage = self.outages.current
        if request.until is not None and now >= request.until:
            self.stop()
        elif self._session is None and now >= self._retry_at:
            # Not opened yet (no frames had arrived): start from the ring at the request time,
            # so nothing since the request is lost. After a failed session: from the ring at
            # the outage's start, so what the ring still holds of the outage is kept.
            self._open_session(request, replay=not request.opened,
                               since_wall=outage.start if outage is not None else None)
        elif outage is not None:
            self._check_resumed()
        if outage is not None and self.outages.heartbeat_due(time.time()):
            self._listener.outage_ongoing(self.stream_id, time.time())

    def _check_resumed(self) -> None:
        """During an outage: it is over once the new session's file holds data."""
        session = self._session
        if session is None or session.start_wall is None or session.current_path is None:
            return
        try:
            written = os.path.getsize(session.current_path) > 0
        except OSError:
            return
        if written:
            self._report(self.outages.resumed(session.start_wall))

    def _session_settings(self, reason: str) -> SessionSettings:
        s = self.settings
        return SessionSettings(s.base_path, self.stream_id, s.fmt, s.segment_duration,
                               s.fragment_duration, reason, s.file_mode, s.dir_mode)

    def _has_space(self) -> bool:
        """Room for a new session: `min_free`, or after a full disk a few seconds' worth."""
        needed = self.settings.min_free
        if self.outages.error == "disk_full":
            with self._lock:
                span, size = self.ring.span, self.ring.bytes
            needed = resume_threshold(needed, size / span if span > 0.5 else 0.0)
        if needed is None:
            return True
        try:
            return self._free_space(self.settings.base_path) >= needed
        except OSError:
            return False

    def _open_session(self, request: RecordRequest, replay: bool = True,
                      from_seq: int | None = None, since_wall: float | None = None) -> None:
        if self._input_eos:
            return
        if not self._has_space():
            now = time.time()
            self._report(self.outages.refused("disk_full", now),
                         f"not enough free space on {self.settings.base_path}")
            self._retry_at = time.monotonic() + SPACE_CHECK_S
            return
        video_caps = self._caps.get("video")
        if video_caps is None:  # nothing received yet: the tick retries shortly
            self._retry_at = time.monotonic() + 0.25
            return
        session = RecordingSession(self._session_settings(request.reason), video_caps,
                                   self._caps.get("audio"), self._callbacks(), self._reaper)
        session.waiting_for_keyframe = True
        session.start()
        with self._lock:
            if from_seq is not None:
                start = self._first_keyframe_index(lambda e: e.seq >= from_seq)
            elif replay and request.pre_roll > 0:
                start = self.ring.start_index(request.requested_at - request.pre_roll)
            elif replay:
                start = self._first_keyframe_index(lambda e: e.arrival >= request.requested_at)
            elif since_wall is not None:
                start = self._first_keyframe_index(lambda e: e.wall >= since_wall)
            else:
                start = None
            if start is not None:
                session.waiting_for_keyframe = False
                for entry in self.ring.from_index(start):
                    session.push(entry)
            self._session = session
            self._rotate_from = None
            request.opened = True

    def _first_keyframe_index(self, accept: Callable) -> int | None:
        for index, entry in enumerate(self.ring.entries):
            if entry.kind == "video" and entry.keyframe and accept(entry):
                return index
        return None

    def _rotate(self) -> bool:
        """New stream-start or caps while recording: close this session, open the next."""
        with self._lock:
            old, self._session = self._session, None
            from_seq = self._rotate_from
        if old is not None:
            self._finish(old)
        if self._request is not None and from_seq is not None:
            log.info("stream %s: stream changed while recording; new segment at next keyframe",
                     self.stream_id, extra={"stream_id": self.stream_id, "event": "rotate"})
            self._open_session(self._request, from_seq=from_seq)
        return False

    def _finish(self, session: RecordingSession) -> None:
        self._finishing.append(session)
        session.finish()

    # ---- session callbacks (GStreamer thread) ----------------------------------------------

    def _callbacks(self) -> SessionCallbacks:
        return SessionCallbacks(self._segment_opened, self._segment_closed,
                                self._session_finished, self._session_failed)

    def _segment_opened(self, session: RecordingSession, path: Path, wall: float) -> None:
        self.segments += 1
        self._listener.segment_opened(self.stream_id, path, wall, session.settings.reason)

    def _segment_closed(self, session: RecordingSession, path: Path, wall: float) -> None:
        size = 0
        with contextlib.suppress(OSError):
            size = os.path.getsize(path)
        self.bytes_written += size
        self._listener.segment_closed(self.stream_id, path, wall)
        if (size and self.outages.current is not None and session is self._session
                and session.start_wall is not None):
            self._report(self.outages.resumed(session.start_wall))

    @property
    def dropped_frames(self) -> int:
        session = self._session
        return self._dropped_finished + (session.dropped if session is not None else 0)

    def _session_finished(self, session: RecordingSession) -> None:
        self._dropped_finished += session.dropped
        if session in self._finishing:
            self._finishing.remove(session)

    def _session_failed(self, session: RecordingSession, message: str, disk_full: bool) -> None:
        now = time.time()
        last = session.last_wall or now
        self._failed.append(session)
        self._settle_failed()
        with self._lock:
            if self._session is session:
                self._session = None
        self._session_finished(session)
        reason = "disk_full" if disk_full else "write_error"
        if self._request is None:  # it failed finishing after a stop: nothing more to record
            log.error("stream %s: recording error %s while finishing: %s", self.stream_id,
                      reason, message, extra={"stream_id": self.stream_id,
                                              "event": "recording_error", "reason": reason})
            return
        self._report(self.outages.failed(reason, last, now, session.start_wall), message)
        self._retry_at = time.monotonic() + self.outages.retry_delay()

    # ---- outages ---------------------------------------------------------------------------

    @property
    def recording_error(self) -> str | None:
        return self.outages.error

    def _report(self, change: Change | None, message: str = "") -> None:
        """Log, store and publish a change of `recording_error`: once per outage start/end."""
        if change is None:
            return
        sid, gap, outage = self.stream_id, change.ended, change.started
        if gap is not None:
            log.warning("stream %s: recording works again after %s; %.1f s not recorded", sid,
                        gap.reason, gap.seconds, extra={"stream_id": sid, "event":
                        "recording_resumed", "reason": gap.reason, "lost_seconds": gap.seconds})
            self._listener.outage_ended(
                sid, gap, lambda seconds: self.outages.add_lost(gap.reason, seconds))
        if outage is not None:
            log.error("stream %s: recording error %s (%s); retrying until it works again", sid,
                      outage.reason, message.rstrip("."), extra={"stream_id": sid, "event":
                      "recording_error", "reason": outage.reason})
            self._listener.outage_started(sid, outage)
        self._emit({"type": "recording_error", "stream_id": sid,
                    "recording_error": change.error, "previous": change.previous,
                    "since": outage.start if outage else None,
                    "lost_seconds": round(gap.seconds, 3) if gap else None})

    def lost_seconds(self) -> dict[str, float]:
        """Seconds of recording lost to outages, by reason (any thread; never decreases)."""
        outage, session = self.outages.current, self._session
        resumable = time.time()
        if outage is not None:
            if session is not None and session.start_wall is not None:
                resumable = session.start_wall  # the resumed session begins there
            else:
                with self._lock:
                    entry = self.ring.first_keyframe_since(outage.start)
                if entry is not None:
                    resumable = entry.wall  # a session opened now would begin there
        return self.outages.lost_seconds(resumable)

    # ---- consumer contract -----------------------------------------------------------------

    @property
    def drained(self) -> bool:
        return self._input_eos and self._session is None and not self._finishing

    def stats(self) -> dict[str, Any]:
        request = self._request
        return {
            "kind": self.kind,
            "name": self.name,
            "recording": request is not None,
            "reason": request.reason if request else None,
            "recording_error": self.recording_error,
            "lost_seconds": self.lost_seconds(),
            "segments": self.segments,
            "bytes_written": self.bytes_written,
            "preroll_seconds": round(self.ring.span, 2),
            "preroll_bytes": self.ring.bytes,
            "dropped_frames": self.dropped_frames,
        }
