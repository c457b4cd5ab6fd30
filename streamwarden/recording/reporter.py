"""What a recorder tells people: log lines, events for the WebSocket/MQTT bus, and the
calls to the index that store what the recording timeline shows (recording requested or not,
outages as gaps, timestamp discontinuities).

One place for the wording and the event shapes, so the recorder only decides when. Each
outage is reported twice, when it begins and when it ends, never per retry (outage.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from streamwarden.recording.listener import SegmentListener
from streamwarden.recording.outage import Change, OutageTracker

log = logging.getLogger("streamwarden.recording")


class RecordingReporter:
    def __init__(self, stream_id: str, listener: SegmentListener,
                 emit: Callable[[dict], None], outages: OutageTracker) -> None:
        self.stream_id = stream_id
        self._listener = listener
        self._emit = emit
        self._outages = outages

    def recording(self, reason: str | None, pre_roll: float = 0.0) -> None:
        """Recording started for `reason` (with `pre_roll`), or stopped (`reason` None)."""
        sid = self.stream_id
        self._listener.recording_changed(sid, reason, time.time())
        if reason is not None:
            log.info("stream %s: recording started (%s, pre-roll %gs)", sid, reason, pre_roll,
                     extra={"stream_id": sid, "event": "recording_started", "reason": reason})
        else:
            log.info("stream %s: recording stopped", sid,
                     extra={"stream_id": sid, "event": "recording_stopped"})
        self._emit({"type": "recording", "stream_id": sid, "recording": reason is not None,
                    "reason": reason})

    def rotating(self) -> None:
        log.info("stream %s: stream changed while recording; new segment at next keyframe",
                 self.stream_id, extra={"stream_id": self.stream_id, "event": "rotate"})

    def failed_after_stop(self, reason: str, message: str) -> None:
        """A session failed while finishing after a stop: nothing more to record, no outage."""
        log.error("stream %s: recording error %s while finishing: %s", self.stream_id, reason,
                  message, extra={"stream_id": self.stream_id, "event": "recording_error",
                                  "reason": reason})

    def change(self, change: Change, message: str = "") -> None:
        """Log, store and publish a change of `recording_error`: once per outage start/end."""
        sid, gap, outage = self.stream_id, change.ended, change.started
        if gap is not None:
            log.warning("stream %s: recording works again after %s; %.1f s not recorded", sid,
                        gap.reason, gap.seconds, extra={"stream_id": sid, "event":
                        "recording_resumed", "reason": gap.reason, "lost_seconds": gap.seconds})
            outages = self._outages
            self._listener.outage_ended(
                sid, gap, lambda seconds: outages.add_lost(gap.reason, seconds))
        if outage is not None:
            log.error("stream %s: recording error %s (%s); retrying until it works again", sid,
                      outage.reason, message.rstrip("."), extra={"stream_id": sid, "event":
                      "recording_error", "reason": outage.reason})
            self._listener.outage_started(sid, outage)
        self._emit({"type": "recording_error", "stream_id": sid,
                    "recording_error": change.error, "previous": change.previous,
                    "since": outage.start if outage else None,
                    "lost_seconds": round(gap.seconds, 3) if gap else None})

    def audio(self, note: str, warning: bool) -> None:
        """How the camera's audio goes into the files, when not as it was sent: said once
        when it starts (a WARNING when the audio is left out: never a silent loss)."""
        level = logging.WARNING if warning else logging.INFO
        log.log(level, "stream %s: %s", self.stream_id, note,
                extra={"stream_id": self.stream_id, "event": "recording_audio"})

    def outage_ongoing(self, wall: float) -> None:
        self._listener.outage_ongoing(self.stream_id, wall)

    def discontinuity(self, stream_id: str, wall_ts: float, jump_seconds: float,
                      recording: bool = True) -> None:
        """The camera's timestamps jumped by `jump_seconds` (signed: forwards or back, beyond
        the time that really passed) at `wall_ts` (wall clock): logged once and stored, so
        the timeline can say why footage is missing there, if it is; the bus tells clients.
        Sessions carry their files across it (bridged), so nothing is lost."""
        log.warning("stream %s: camera timestamps jumped by %+.3f s", stream_id, jump_seconds,
                    extra={"stream_id": stream_id, "event": "discontinuity",
                           "jump_seconds": jump_seconds})
        self._listener.discontinuity(stream_id, wall_ts, jump_seconds)
        self._emit({"type": "discontinuity", "stream_id": stream_id, "time": wall_ts,
                    "jump_seconds": round(jump_seconds, 3), "recording": recording})
