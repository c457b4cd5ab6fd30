"""The recording policy: when a session opens, where in the pre-event buffer it begins, when
it ends, when it rotates and when a failed one is retried. A pure state machine.

It knows nothing of GStreamer, files or clocks: the recorder (recorder.py, the GStreamer
adapter) feeds it requests (start / extend / stop), clock ticks, what the stream does (a new
stream-start, new caps, end of input) and what its sessions do (opened, refused for space,
failed, data on disk), and applies the actions it answers with. So the rules are read in one
place and tested with a fake clock and hand-made frames (tests/unit/test_recording_policy.py):

- start: a session opens at a keyframe: the one at or before `now - pre_roll` from the ring
  (pre-roll is capped at what the ring holds), or, with no pre-roll, the first keyframe that
  arrived after the request. `duration` (or `post_roll`) makes the recording stop by itself.
- extend: a start while recording never opens a second session. It moves a timed
  recording's end later, or makes it open-ended; an open-ended recording stays so.
- stop: at once (a timed recording stops at its end), the session finishes its file.
- rotate: a new stream-start (reconnect) or new caps while recording finish the session and
  open the next one at the first keyframe at or after the change, from the ring, so no frame
  is lost and no file mixes two resolutions or two timelines. Audio that turns up after the
  session opened (an MPEG-TS camera's audio often comes a moment after its video) or changes
  its caps cannot join the session's muxer: the video goes on into it, and the next
  keyframe opens the session that has the audio track.
- retry: a session that fails (disk full, write error) begins an outage (outage.py: reported
  once, however many retries fail); retries follow its back-off and start from the ring at
  the outage's start. No room on the disk refuses a session without trying (no empty file
  per retry) and looks again every SPACE_CHECK_S.

Two paths with different costs: `video_frame`/`audio_frame` run for every frame (under the
recorder's lock, on the pump or a streaming thread) and answer with an int; everything else
runs on the GStreamer thread a few times a second at most and answers with `Action`s.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from streamwarden.recording.outage import SPACE_CHECK_S, Change, OutageTracker, resume_threshold
from streamwarden.recording.ring import Rule, StartAt

NO_CAPS_RETRY_S = 0.25  # nothing received yet when a session was due: look again this soon

# What to do with one frame, after it went into the ring (ints: decided for every frame).
SKIP = 0  # not recording (or a rotation is pending): the ring keeps it
PUSH = 1  # hand it to the current session (which starts at its first keyframe)
ROTATE = 2  # the stream changed under the session: rotate (GStreamer thread) from this frame


class Do(enum.Enum):
    ANNOUNCE = "announce"  # recording started (reason) or stopped (reason None): log, publish
    OPEN = "open"  # open a session for `reason`, replaying the ring from `start`
    FINISH = "finish"  # finish the current session (it finalises its file)
    STOP = "stop"  # a timed recording reached its end: stop (as a stop request would)
    REPORT = "report"  # recording_error changed (`change`): log, store the gap, publish
    CHECK_WRITTEN = "check_written"  # during an outage: has the new session's file data?
    HEARTBEAT = "heartbeat"  # the outage still goes on: move its stored end on


class Action(NamedTuple):
    do: Do
    reason: str | None = None
    start: StartAt | None = None
    change: Change | None = None
    message: str = ""
    pre_roll: float = 0.0  # ANNOUNCE of a start: the pre-roll asked for


@dataclass
class Request:
    """One recording run, from its start request to its stop."""

    reason: str  # continuous | manual | event
    requested_at: float  # monotonic
    pre_roll: float  # seconds, at most what the ring holds
    until: float | None  # monotonic stop time, None = until stopped
    opened: bool = False  # a session has been opened for this request


def start_point(request: Request, outage_start: float | None = None,
                from_seq: int | None = None) -> StartAt | None:
    """Where a session for `request` begins in the ring.

    A rotation begins at the change. The first session of a request replays the pre-roll
    (or, without one, begins at the first keyframe after the request, so nothing since the
    request is lost even if the session opens late). A session after a failure replays from
    the outage's start, so what the ring still holds of the outage is kept. Otherwise: the
    next keyframe to arrive."""
    if from_seq is not None:
        return StartAt(Rule.FROM_SEQ, from_seq)
    if not request.opened:
        if request.pre_roll > 0:
            return StartAt(Rule.AT_OR_BEFORE, request.requested_at - request.pre_roll)
        return StartAt(Rule.ARRIVED_SINCE, request.requested_at)
    if outage_start is not None:
        return StartAt(Rule.WALL_SINCE, outage_start)
    return None


class RecordingPolicy:
    """One recorder's request, session state and outages. `now` is monotonic seconds, `wall`
    wall-clock seconds (outages and gaps are stored in wall time)."""

    def __init__(self, buffer_duration: float) -> None:
        self.buffer_duration = buffer_duration
        self.outages = OutageTracker()
        self.request: Request | None = None
        self.session_open = False  # a session is current (the recorder holds it)
        self.rotate_from: int | None = None  # ring seq where the next session must begin
        self.discontinuity = False  # a new stream-start: the next video frame is a change
        self.audio_changed = False  # new audio caps under an open session: rotate at a key
        self.input_ended = False  # the stream sent EOS: no session opens any more
        self.retry_at = 0.0

    @property
    def recording(self) -> bool:
        return self.request is not None

    # ---- per frame (under the recorder's lock) ---------------------------------------------

    def video_frame(self, seq: int, first_caps: bool, caps_changed: bool,
                    keyframe: bool = False) -> int:
        """A video frame numbered `seq` entered the ring. `first_caps`: the first video caps
        ever seen; `caps_changed`: not the caps of the frame before."""
        changed = self.discontinuity or caps_changed
        self.discontinuity = False
        if not self.session_open or self.rotate_from is not None:
            return SKIP
        if (changed and not first_caps) or (self.audio_changed and keyframe):
            self.audio_changed = False
            self.rotate_from = seq
            return ROTATE
        return PUSH

    def audio_frame(self, caps_changed: bool = False) -> int:
        """An audio frame entered the ring; `caps_changed`: the first audio caps ever seen or
        not those of the frame before (the open session was built without them)."""
        if not self.session_open or self.rotate_from is not None:
            return SKIP
        if caps_changed:
            self.audio_changed = True
        return SKIP if self.audio_changed else PUSH

    def stream_started(self) -> None:
        """A new source attempt (streaming thread, after the old stream's frames)."""
        self.discontinuity = True

    def ended(self) -> None:
        """The stream's input ended (EOS): the recorder stops; nothing opens after this."""
        self.input_ended = True

    # ---- requests (GStreamer thread) -------------------------------------------------------

    def start(self, now: float, reason: str = "manual", pre_roll: float | None = None,
              duration: float | None = None, post_roll: float | None = None) -> list[Action]:
        """Start, or extend the recording that is going on (then nothing to do)."""
        length = duration if duration is not None else post_roll
        until = now + length if length is not None else None
        request = self.request
        if request is not None:
            if request.until is not None:  # a timed recording: extend or make it open-ended
                request.until = None if until is None else max(request.until, until)
                if reason != "event":
                    request.reason = reason
            return []
        pre_roll = pre_roll or 0.0
        request = self.request = Request(reason, now, min(pre_roll, self.buffer_duration),
                                         until)
        actions = [Action(Do.ANNOUNCE, reason, pre_roll=pre_roll)]
        if not self.input_ended:
            actions.append(Action(Do.OPEN, reason, start_point(request)))
        return actions

    def stop(self, wall: float, session_start: float | None) -> list[Action]:
        """Stop now (under the recorder's lock: no frame reaches the session after this).
        `session_start`: the current session's first frame (wall), where a resumed outage
        ends; without one the outage ends now."""
        if self.request is None:
            return []
        self.request = None
        self.rotate_from = None
        actions = []
        if self.session_open:
            self.session_open = False
            actions.append(Action(Do.FINISH))
        change = self.outages.stopped(session_start or wall)
        if change is not None:
            actions.append(Action(Do.REPORT, change=change))
        actions.append(Action(Do.ANNOUNCE, None))
        return actions

    def rotate(self) -> list[Action]:
        """The change `video_frame` answered ROTATE for (under the recorder's lock): finish
        the session, open the next from the changed frame."""
        actions = []
        if self.session_open:
            self.session_open = False
            actions.append(Action(Do.FINISH))
        request = self.request
        if request is not None and self.rotate_from is not None and not self.input_ended:
            actions.append(Action(Do.OPEN, request.reason,
                                  start_point(request, from_seq=self.rotate_from)))
        return actions

    def tick(self, now: float, wall: float) -> list[Action]:
        """Timers: a timed recording's end, a session that is due (first, or a retry), and
        during an outage whether it is over and its heartbeat."""
        request = self.request
        if request is None:
            return []
        outage = self.outages.current
        actions = []
        if request.until is not None and now >= request.until:
            return [Action(Do.STOP)]
        if not self.session_open and now >= self.retry_at:
            if not self.input_ended:
                start = start_point(request, outage.start if outage is not None else None)
                actions.append(Action(Do.OPEN, request.reason, start))
        elif outage is not None:
            actions.append(Action(Do.CHECK_WRITTEN))
        if outage is not None and self.outages.heartbeat_due(wall):
            actions.append(Action(Do.HEARTBEAT))
        return actions

    # ---- sessions (GStreamer thread) -------------------------------------------------------

    def space_needed(self, min_free: int | None, bytes_per_second: float) -> int | None:
        """Free bytes a new session needs: `min_free`, and after a full disk a few seconds of
        the stream (resume_threshold), so a retry does not fill the disk again at once."""
        if self.outages.error == "disk_full":
            return resume_threshold(min_free, bytes_per_second)
        return min_free

    def opened(self) -> None:
        """The OPEN was carried out (under the recorder's lock, with its replay)."""
        self.session_open = True
        self.rotate_from = None
        self.audio_changed = False  # the session was built with the audio caps of now
        if self.request is not None:
            self.request.opened = True

    def refused(self, now: float, wall: float, message: str) -> list[Action]:
        """The OPEN found too little free space: an outage (once), look again soon."""
        self.retry_at = now + SPACE_CHECK_S
        return _report(self.outages.refused("disk_full", wall), message)

    def deferred(self, now: float) -> None:
        """The OPEN came before any frame (no caps to build a session from): soon again."""
        self.retry_at = now + NO_CAPS_RETRY_S

    def failed(self, now: float, wall: float, current: bool, reason: str, last_recorded: float,
               session_start: float | None, message: str) -> list[Action]:
        """A session failed (under the recorder's lock): `current` if it was the one frames
        went to. After a stop there is nothing more to record; otherwise an outage, retried
        after its back-off."""
        if current:
            self.session_open = False
        if self.request is None:
            return []
        change = self.outages.failed(reason, last_recorded, wall, session_start)
        self.retry_at = now + self.outages.retry_delay()
        return _report(change, message)

    def written(self, session_start: float) -> list[Action]:
        """The current session's file holds data: an outage is over where it began."""
        return _report(self.outages.resumed(session_start))

    def lost_seconds(self, wall: float, session_start: float | None,
                     keyframe_since: Callable[[float], float | None]) -> dict[str, float]:
        """Seconds of recording lost, by reason. During an outage the loss runs up to where a
        session opened now would begin: the resumed session's start if there is one, else the
        first keyframe since the outage's start still in the ring (`keyframe_since(wall)`),
        else now."""
        outage = self.outages.current
        resumable = wall
        if outage is not None:
            if session_start is not None:
                resumable = session_start
            else:
                keyframe = keyframe_since(outage.start)
                if keyframe is not None:
                    resumable = keyframe
        return self.outages.lost_seconds(resumable)


def _report(change: Change | None, message: str = "") -> list[Action]:
    return [Action(Do.REPORT, change=change, message=message)] if change is not None else []
