"""The move budget: how many planned moves (handoffs for balance, not failover) a node may
start per minute. A token bucket on a monotonic clock, so a node that joins a cluster takes its
share over a few minutes instead of every camera of the cluster blinking at once."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class MoveBudget:
    per_minute: int
    tokens: float = field(init=False)
    _last: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.per_minute)

    def _refill(self, now: float) -> None:
        if self._last is not None:
            self.tokens = min(float(self.per_minute),
                              self.tokens + (now - self._last) * self.per_minute / 60.0)
        self._last = now

    def available(self, now: float) -> int:
        self._refill(now)
        return int(self.tokens)

    def spend(self, now: float, count: int = 1) -> None:
        self._refill(now)
        self.tokens = max(0.0, self.tokens - count)
