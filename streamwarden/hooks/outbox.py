"""One webhook's deliveries: a bounded line, in order, each retried with exponential backoff.

Pure policy with the clock passed in, so the retry timing, the give-up rule and the drop rule
are tested with a fake clock; the sender (webhooks.py) only does what this says.

- A delivery is a body with its idempotency key, made once when the trigger is queued, so
  every attempt sends the same bytes under the same key and a receiver that saw an attempt
  whose answer was lost (a timeout) can tell the retry apart from a new event.
- Deliveries go one at a time, oldest first: the receiver sees events in the order they
  happened, and a receiver that is down costs one failing request per backoff, not one per
  event.
- Retries: after attempt n fails, wait `backoff * 2**(n-1)`, at most `max_backoff`, or the
  receiver's `Retry-After` when longer (still at most `max_backoff`); after `max_attempts`
  the delivery is given up (counted) and the next one goes.
- A 2xx answer delivers; no answer (refused, reset, timed out), 408, 429 and 5xx are retried;
  any other answer (400, 401, 404, a redirect) is the receiver refusing: given up at once.
- The line holds at most `capacity`; a trigger arriving when it is full is dropped (counted).
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

RETRIED_STATUSES = frozenset({408, 425, 429})


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"
    GIVEN_UP = "given_up"  # not an answer: what `attempted` says after the last attempt


def classify(status: int | None) -> Outcome:
    """What an attempt's answer means (`None`: no answer at all)."""
    if status is None or status in RETRIED_STATUSES or status >= 500:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    return Outcome.REFUSED


def retry_after(value: str | None, now_wall: float) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), if valid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_wall)
    except (TypeError, ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class Backoff:
    initial: float
    maximum: float

    def delay(self, failed_attempts: int, asked: float | None = None) -> float:
        """The wait after `failed_attempts` failures (1 for the first)."""
        exponent = min(max(failed_attempts - 1, 0), 60)
        wait = max(self.initial * 2.0 ** exponent, asked or 0.0)
        return min(wait, self.maximum)


@dataclass
class Delivery:
    key: str  # the idempotency key: the same for every attempt
    hook: str
    body: bytes
    attempts: int = 0
    not_before: float = 0.0  # monotonic seconds; the next attempt not before this


@dataclass
class OutboxCounts:
    delivered: int = 0
    failed_attempts: int = 0  # attempts that failed (each retry's failure counts)
    given_up: int = 0  # deliveries abandoned: refused, or out of attempts
    dropped: int = 0  # never queued: the line was full


@dataclass
class Outbox:
    capacity: int
    backoff: Backoff
    max_attempts: int
    counts: OutboxCounts = field(default_factory=OutboxCounts)
    _line: deque[Delivery] = field(default_factory=deque)

    def __len__(self) -> int:
        return len(self._line)

    def offer(self, delivery: Delivery) -> bool:
        """Queue `delivery`; False (and counted) when the line is full."""
        if len(self._line) >= self.capacity:
            self.counts.dropped += 1
            return False
        self._line.append(delivery)
        return True

    def due(self, now: float) -> Delivery | None:
        """The delivery to attempt now, if the oldest one's wait is over."""
        if self._line and self._line[0].not_before <= now:
            return self._line[0]
        return None

    def wait(self, now: float) -> float | None:
        """Seconds until the oldest delivery is due (None: nothing queued)."""
        if not self._line:
            return None
        return max(0.0, self._line[0].not_before - now)

    def attempted(self, delivery: Delivery, outcome: Outcome, now: float,
                  asked: float | None = None) -> Outcome:
        """Record an attempt at the oldest delivery; returns what happens to it: DELIVERED
        and GIVEN_UP take it out of the line, RETRY keeps it there until `not_before`."""
        if not self._line or self._line[0] is not delivery:
            raise ValueError("only the oldest delivery is attempted")
        delivery.attempts += 1
        if outcome is Outcome.DELIVERED:
            self.counts.delivered += 1
            self._line.popleft()
            return outcome
        self.counts.failed_attempts += 1
        if outcome is Outcome.REFUSED or delivery.attempts >= self.max_attempts:
            self.counts.given_up += 1
            self._line.popleft()
            return Outcome.GIVEN_UP
        delivery.not_before = now + self.backoff.delay(delivery.attempts, asked)
        return Outcome.RETRY

    def clear(self) -> int:
        """Shutting down: how many deliveries were still waiting (they are dropped)."""
        left = len(self._line)
        self._line.clear()
        return left
