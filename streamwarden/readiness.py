"""When the service is ready: what `GET /health/ready` (and a container's HEALTHCHECK, a
load balancer, systemd's watchdog scripts) ask.

Ready means the configuration is loaded, the database answers, and every stream the service
started with has been attempted once: its first source attempt has ended, streaming or not
(a camera that is down is a state the health API reports, not a reason to keep the whole
service out of rotation). Readiness is latched per start-up: a stream added later through the
API does not take a running service out of rotation while it connects. Shutting down ends it.

Plain values in, a verdict out: no GStreamer, no asyncio (tests/unit/test_readiness.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

FIRST_ATTEMPT_PENDING = "starting"  # the supervisor's state until the first attempt has ended


@dataclass(frozen=True)
class Verdict:
    ready: bool
    reason: str  # one sentence: what is missing, or what was checked


@dataclass
class Readiness:
    """The service's start-up facts, set by the service as they happen."""

    started: bool = False  # config loaded, database opened, start-up streams added
    stopping: bool = False
    pending: set[str] = field(default_factory=set)  # start-up streams not yet attempted once

    def starting_with(self, stream_ids: list[str]) -> None:
        """Start-up has added these streams (each must be attempted once)."""
        self.pending = set(stream_ids)
        self.started = True

    def check(self, states: Mapping[str, str], database_ok: bool) -> Verdict:
        """`states`: every running stream's supervisor state, by id."""
        if self.stopping:
            return Verdict(False, "the service is shutting down")
        if not self.started:
            return Verdict(False, "the service is starting")
        if not database_ok:
            return Verdict(False, "the database does not answer")
        # A stream removed meanwhile, or past its first attempt, is off the list for good.
        self.pending = {sid for sid in self.pending
                        if states.get(sid, "") == FIRST_ATTEMPT_PENDING}
        if self.pending:
            waiting = ", ".join(sorted(self.pending)[:5])
            more = f" and {len(self.pending) - 5} more" if len(self.pending) > 5 else ""
            return Verdict(False, f"waiting for the first attempt of stream(s) {waiting}{more}")
        return Verdict(True, f"config loaded, database open, {len(states)} stream(s) attempted")
