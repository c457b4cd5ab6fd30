"""The recording consumer: the GStreamer side of the recording policy.

What is recorded, from where and when is decided by `policy.RecordingPolicy` (pure, see its
docstring for the rules: start/extend/stop, rotate on a stream change, retries and outages).
This adapter does what the policy cannot: it moves frames, builds and finishes sessions,
probes the disk and reports.

Frames leave the producer's tees into an appsink per media kind, which holds them in C until
the recording pump (pump.py) drains them, a batch every 0.2 s. Each frame goes into the
pre-event ring (ring.py) and, when the policy says so, into the current session (an
appsrc-fed pipeline of its own, session.py, which starts at a keyframe). A failed session's
files are settled by the index; nothing else stops.

Draining appends to the ring and pushes to the session under a short lock. It runs on the pump
thread; on a streaming thread before an event is handled (so a reconnect or EOS is seen after
the frames that preceded it); and on the GStreamer thread before a start or a stop (so a
start's "now" and a stop's last frame are exact, not up to one batch late). Sessions are
built, started and finished on the GStreamer thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamwarden.consumers.base import Consumer, appsink_buffer
from streamwarden.gst.buffers import decode_order_key, is_keyframe, same_caps
from streamwarden.gst.init import GLib, Gst
from streamwarden.gst.reaper import Reaper
from streamwarden.media.timeline import interleave
from streamwarden.recording.layout import start_time_from_name
from streamwarden.recording.listener import SegmentListener
from streamwarden.recording.policy import PUSH, ROTATE, Action, Do, RecordingPolicy
from streamwarden.recording.pump import PUMP, Pump
from streamwarden.recording.reporter import RecordingReporter
from streamwarden.recording.ring import PrerollRing, StartAt
from streamwarden.recording.session import RecordingSession, SessionCallbacks, SessionSettings

__all__ = ["Recorder", "RecorderSettings", "SegmentListener", "free_bytes"]

# Frames an appsink holds before it drops the oldest: 20 s of 25 fps video, several seconds
# of audio; far more than one pump interval, so only a stalled process ever drops.
APPSINK_MAX_BUFFERS = 500
_STREAM_START = Gst.EventType.STREAM_START
_EOS = Gst.EventType.EOS
_PROBE_OK = Gst.PadProbeReturn.OK

Frame = tuple[str, Gst.Buffer, Gst.Caps]  # (kind, buffer, caps) as pulled from an appsink


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


def free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def _decode_order(frame: Frame) -> int:
    return decode_order_key(frame[1])


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
        self._lock = threading.Lock()
        self.ring = PrerollRing(settings.buffer_duration)
        self.policy = RecordingPolicy(settings.buffer_duration)
        self._tell = RecordingReporter(stream_id, self._listener,
                                       on_event or (lambda event: None), self.policy.outages)
        self._caps: dict[str, Gst.Caps] = {}
        self.discontinuities = 0
        self._audio_note: str | None = None  # how the audio is recorded, when not as sent
        self.recording_warning: str | None = None  # ...when that is a loss
        self._session: RecordingSession | None = None  # current while policy.session_open
        self._finishing: list[RecordingSession] = []
        self._failed: list[RecordingSession] = []  # until their pipelines are down
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
        if kind != "video" or event_type not in (_STREAM_START, _EOS):
            return _PROBE_OK
        with self._lock:
            self._drain_locked()  # the frames before the event belong to the old stream
            if event_type == _STREAM_START:
                self.policy.stream_started()  # a new source attempt: new timestamps, caps?
            else:
                self.policy.ended()
                GLib.idle_add(self._stop_on_eos)
        return _PROBE_OK

    def drain(self) -> None:
        """Take every frame waiting in the appsinks (pump thread, mostly)."""
        with self._lock:
            self._drain_locked()

    def _drain_locked(self) -> None:
        (_, video_sink), (_, audio_sink) = self._sinks
        video, audio = _pull_all("video", video_sink), _pull_all("audio", audio_sink)
        # One arrival time for the batch: every frame in it arrived at most one pump interval
        # earlier, and never after this moment (what start's "now" relies on).
        now, wall = time.monotonic(), time.time()
        take = self._take
        # Both kinds waited in their own appsink: hand them on in decode order, as they
        # arrived, so the ring and the session see one interleaved stream.
        for kind, buffer, caps in interleave(video, audio, _decode_order):
            take(kind, buffer, caps, now, wall)

    def _take(self, kind: str, buffer: Gst.Buffer, caps: Gst.Caps, now: float,
              wall: float) -> None:
        """One frame, in order: into the ring and, if the policy says so, the session."""
        previous = self._caps.get(kind)
        self._caps[kind] = caps
        changed = previous is not None and not same_caps(previous, caps)
        if kind == "video":
            keyframe = is_keyframe(buffer)
            entry = self.ring.append(kind, buffer, caps, now, wall, keyframe, buffer.get_size())
            todo = self.policy.video_frame(entry.seq, previous is None, changed, keyframe)
        else:
            entry = self.ring.append(kind, buffer, caps, now, wall, True, buffer.get_size())
            todo = self.policy.audio_frame(previous is None or changed)
        if todo == PUSH:
            self._session.push(entry)  # type: ignore[union-attr]  # open while PUSH
        elif todo == ROTATE:
            GLib.idle_add(self._rotate)

    def discontinuity(self, wall: float, seconds: float) -> None:
        """The camera's timestamps jumped by `seconds` at `wall` (the stream saw it): the
        sessions carry the files across it (media.timeline.Bridge); the index and the bus
        are told."""
        self.discontinuities += 1
        self._tell.discontinuity(self.stream_id, wall, seconds, self.policy.recording)

    def latest_keyframe(self) -> tuple[Gst.Buffer, Gst.Caps] | None:
        """The newest keyframe in the pre-event buffer (any thread), for snapshots."""
        with self._lock:
            entry = self.ring.latest_keyframe()
        return (entry.buffer, entry.caps) if entry is not None else None

    # ---- control (GStreamer thread) --------------------------------------------------------

    @property
    def recording(self) -> bool:
        return self.policy.recording

    def start(self, reason: str = "manual", pre_roll: float | None = None,
              duration: float | None = None, post_roll: float | None = None) -> None:
        """Start (or extend) recording. Idempotent: a running recording just keeps going."""
        self.drain()  # everything that arrived before the request is stamped before `now`
        self._apply(self.policy.start(time.monotonic(), reason, pre_roll, duration, post_roll))

    def stop(self) -> None:
        if not self.policy.recording:
            return
        with self._lock:
            self._drain_locked()  # up to the last frame that arrived before the stop
            session = self._session
            actions = self.policy.stop(time.time(), session.start_wall if session else None)
        self._apply(actions)

    def _stop_on_eos(self) -> bool:
        self.stop()
        return False

    def tick(self, now: float) -> None:
        if self._failed:
            self._settle_failed()
        self._apply(self.policy.tick(now, time.time()))

    def _rotate(self) -> bool:
        """New stream-start or caps while recording: close this session, open the next."""
        with self._lock:
            actions = self.policy.rotate()
        if any(action.do is Do.OPEN for action in actions):
            self._tell.rotating()
        self._apply(actions)
        return False

    def _apply(self, actions: list[Action]) -> None:
        """Carry out what the policy decided, in its order."""
        for action in actions:
            do = action.do
            if do is Do.OPEN:
                self._open_session(action.reason or "manual", action.start)
            elif do is Do.FINISH:
                self._finish_current()
            elif do is Do.REPORT and action.change is not None:
                self._tell.change(action.change, action.message)
            elif do is Do.ANNOUNCE:
                self._tell.recording(action.reason, action.pre_roll)
            elif do is Do.STOP:
                self.stop()
            elif do is Do.CHECK_WRITTEN:
                self._check_resumed()
            elif do is Do.HEARTBEAT:
                self._tell.outage_ongoing(time.time())

    # ---- sessions (GStreamer thread) -------------------------------------------------------

    def _open_session(self, reason: str, start: StartAt | None) -> None:
        if not self._has_space():
            self._apply(self.policy.refused(time.monotonic(), time.time(),
                                            f"not enough free space on {self.settings.base_path}"))
            return
        video_caps = self._caps.get("video")
        if video_caps is None:  # nothing received yet: the tick retries shortly
            self.policy.deferred(time.monotonic())
            return
        session = RecordingSession(self._session_settings(reason), video_caps,
                                   self._caps.get("audio"), self._callbacks(), self._reaper)
        self._note_audio(session)
        session.start()
        with self._lock:
            index = self.ring.index_of(start)
            if index is not None:  # replay the ring from there; live frames follow
                for entry in self.ring.from_index(index):
                    session.push(entry)
            self._session = session
            self.policy.opened()

    def _note_audio(self, session: RecordingSession) -> None:
        """Tell (once per change) how the camera's audio goes into the files."""
        plan = session.audio_plan
        note = plan.note if plan is not None else None
        if note != self._audio_note:
            self._audio_note = note
            self.recording_warning = note if plan is not None and plan.warning else None
            if note is not None:
                self._tell.audio(note, warning=self.recording_warning is not None)

    def _has_space(self) -> bool:
        """Room for a new session, as much as the policy asks for."""
        with self._lock:
            rate = self.ring.bytes_per_second
        needed = self.policy.space_needed(self.settings.min_free, rate)
        if needed is None:
            return True
        try:
            return self._free_space(self.settings.base_path) >= needed
        except OSError:
            return False

    def _session_settings(self, reason: str) -> SessionSettings:
        s = self.settings
        return SessionSettings(s.base_path, self.stream_id, s.fmt, s.segment_duration,
                               s.fragment_duration, reason, s.file_mode, s.dir_mode)

    def _finish_current(self) -> None:
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            self._finishing.append(session)
            session.finish()

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
            self._apply(self.policy.written(session.start_wall))

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
        if size and session is self._session and session.start_wall is not None:
            self._apply(self.policy.written(session.start_wall))

    def _session_finished(self, session: RecordingSession) -> None:
        self._dropped_finished += session.dropped
        if session in self._finishing:
            self._finishing.remove(session)

    def _session_failed(self, session: RecordingSession, message: str, disk_full: bool) -> None:
        now = time.time()
        self._failed.append(session)
        self._settle_failed()
        reason = "disk_full" if disk_full else "write_error"
        with self._lock:
            current = self._session is session
            if current:
                self._session = None
            recording = self.policy.recording
            actions = self.policy.failed(time.monotonic(), now, current, reason,
                                         session.last_wall or now, session.start_wall, message)
        self._session_finished(session)
        if not recording:  # it failed finishing after a stop: nothing more to record
            self._tell.failed_after_stop(reason, message)
        self._apply(actions)

    # ---- outages ---------------------------------------------------------------------------

    @property
    def recording_error(self) -> str | None:
        return self.policy.outages.error

    def lost_seconds(self) -> dict[str, float]:
        """Seconds of recording lost to outages, by reason (any thread; never decreases)."""
        session = self._session
        return self.policy.lost_seconds(time.time(),
                                        session.start_wall if session is not None else None,
                                        self._keyframe_wall_since)

    def _keyframe_wall_since(self, wall: float) -> float | None:
        with self._lock:
            entry = self.ring.first_keyframe_since(wall)
        return entry.wall if entry is not None else None

    # ---- consumer contract -----------------------------------------------------------------

    @property
    def drained(self) -> bool:
        return self.policy.input_ended and self._session is None and not self._finishing

    @property
    def dropped_frames(self) -> int:
        session = self._session
        return self._dropped_finished + (session.dropped if session is not None else 0)

    def stats(self) -> dict[str, Any]:
        request = self.policy.request
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
            "audio": self._audio_note,
            "discontinuities": self.discontinuities,
        }


def _pull_all(kind: str, sink: Gst.Element) -> list[Frame]:
    """Every frame waiting in an appsink, oldest first; never waits."""
    frames: list[Frame] = []
    pull = sink.try_pull_sample
    while True:
        sample = pull(0)
        if sample is None:
            return frames
        frames.append((kind, sample.get_buffer(), sample.get_caps()))
