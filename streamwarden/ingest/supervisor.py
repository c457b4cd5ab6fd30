"""The source supervisor: fallbacksrc's reconnect behaviour as a pure state machine.

It knows nothing of GStreamer: the stream feeds it "data arrived", "error", "eos" and clock
ticks, and it answers with what to do (tear the source down, start a new attempt). That keeps
the timing rules readable and testable on their own:

- `timeout`: an attempt that delivers no data for this long (or never starts) is restarted.
- `restart_timeout`: the pause between tearing a source down and the next attempt. While the
  stream is `retrying` attempts come every `restart_timeout`, so a camera that comes back is
  streaming again within `restart_timeout` plus its connection time.
- `retry_timeout`: after this long without data the state is `failed`; attempts go on, with the
  pause doubling from `restart_timeout` up to `failed_retry_interval` (a dead camera costs
  little, a camera that returns after hours is still picked up).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from streamwarden.config.model import SourceSettings


class StreamState(enum.StrEnum):
    STARTING = "starting"
    STREAMING = "streaming"
    RETRYING = "retrying"
    FAILED = "failed"
    STOPPED = "stopped"


class RetryReason(enum.StrEnum):
    TIMEOUT = "timeout"
    ERROR = "error"
    EOS = "eos"


class Action(enum.Enum):
    NONE = "none"
    TEARDOWN = "teardown"  # the current attempt is over: dispose of the source now
    START = "start"  # build and start a new attempt now


@dataclass
class Transition:
    """A state change worth a log line."""

    old: StreamState
    new: StreamState
    reason: str


class SourceSupervisor:
    """Decides when a stream's source is restarted and what state the stream is in."""

    def __init__(self, settings: SourceSettings, now: float):
        self.settings = settings
        self.state = StreamState.STARTING
        self.retry_count = 0
        self.last_retry_reason: RetryReason | None = None
        self.last_error: str | None = None
        self.attempt_active = True
        self.attempt_started = now
        self.last_data: float | None = None
        self.outage_since: float = now
        self.next_attempt_at: float | None = None
        self._failed_attempts = 0
        self.transitions: list[Transition] = []

    def _set_state(self, new: StreamState, reason: str) -> None:
        if new is not self.state:
            self.transitions.append(Transition(self.state, new, reason))
            self.state = new

    def pop_transitions(self) -> list[Transition]:
        out, self.transitions = self.transitions, []
        return out

    def on_data(self, now: float) -> None:
        """Data from the current attempt reached the stream's output."""
        if not self.attempt_active:
            return
        self.last_data = now
        if self.state is not StreamState.STREAMING:
            self._failed_attempts = 0
            self._set_state(StreamState.STREAMING, "data flowing")

    def on_problem(self, now: float, reason: RetryReason, detail: str | None = None) -> Action:
        """The current attempt failed (error, eos or timeout): schedule the next one."""
        if not self.attempt_active:
            return Action.NONE
        self.attempt_active = False
        self.retry_count += 1
        self.last_retry_reason = reason
        if detail:
            self.last_error = detail
        if self.state is StreamState.STREAMING:
            self.outage_since = now
        self._failed_attempts += 1
        if now - self.outage_since >= self.settings.retry_timeout:
            self._set_state(StreamState.FAILED, f"no data for {now - self.outage_since:.0f}s")
        else:
            self._set_state(StreamState.RETRYING, reason.value + (f": {detail}" if detail else ""))
        self.next_attempt_at = now + self._pause()
        return Action.TEARDOWN

    def _pause(self) -> float:
        restart = self.settings.restart_timeout
        if self.state is not StreamState.FAILED:
            return restart
        doublings = min(self._failed_attempts, 16)
        return min(restart * (2**doublings), max(restart, self.settings.failed_retry_interval))

    def tick(self, now: float) -> Action:
        """Called periodically; returns what the stream must do now."""
        if (
            self.state in (StreamState.STARTING, StreamState.RETRYING)
            and now - self.outage_since >= self.settings.retry_timeout
        ):
            self._set_state(StreamState.FAILED, f"no data for {now - self.outage_since:.0f}s")
        if self.attempt_active:
            since = self.last_data if self.state is StreamState.STREAMING else None
            reference = since if since is not None else self.attempt_started
            if now - reference > self.settings.timeout:
                return self.on_problem(
                    now, RetryReason.TIMEOUT, f"no data for {self.settings.timeout:g}s"
                )
            return Action.NONE
        if self.next_attempt_at is not None and now >= self.next_attempt_at:
            self.attempt_active = True
            self.attempt_started = now
            self.next_attempt_at = None
            return Action.START
        return Action.NONE

    def stop(self) -> None:
        self.attempt_active = False
        self.next_attempt_at = None
        self._set_state(StreamState.STOPPED, "removed")

    def unhealthy_for(self, now: float) -> float:
        """Seconds the stream has been without data (0 while streaming)."""
        if self.state is StreamState.STREAMING:
            return 0.0
        return now - self.outage_since
