"""Slowing password guessing: per client address, a growing wait after failed logins.

Each attempt counts as a failure the moment it starts and is forgiven only when it succeeds,
so a burst of parallel guesses cannot all slip in before the first one fails. The first
`free_failures` cost nothing; after that each failure makes the client wait twice as long as
the previous one (`first_delay`, doubling up to `max_delay`). A client that waits is refused
without its password being looked at. Addresses idle for `forget_after` are forgotten, and at
most `max_clients` are remembered (the longest idle go first), so a flood of addresses cannot
grow memory without bound. Plain logic with an injected clock: tests/unit drive it by hand.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    free_failures: int = 3
    first_delay: float = 1.0
    max_delay: float = 300.0
    forget_after: float = 3600.0
    max_clients: int = 10_000

    def delay(self, failures: int) -> float:
        """How long a client waits after its `failures`-th failure in a row."""
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return min(self.max_delay, self.first_delay * 2 ** min(over - 1, 30))


@dataclass
class _Client:
    failures: int = 0
    blocked_until: float = 0.0
    last_seen: float = 0.0


class LoginBackoff:
    def __init__(self, policy: BackoffPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.policy = policy or BackoffPolicy()
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self.refused = 0  # attempts refused while their client had to wait

    def attempt(self, client: str) -> float:
        """Start a login attempt: 0.0 if it may go ahead (it counts as a failure until
        `succeeded`), else the seconds `client` must still wait (nothing is counted)."""
        now = self._clock()
        self._forget_idle(now)
        entry = self._clients.get(client)
        if entry is not None and entry.blocked_until > now:
            self.refused += 1
            return entry.blocked_until - now
        if entry is None:
            entry = self._clients[client] = _Client()
        self._clients.move_to_end(client)
        entry.failures += 1
        entry.last_seen = now
        entry.blocked_until = now + self.policy.delay(entry.failures)
        while len(self._clients) > self.policy.max_clients:
            self._clients.popitem(last=False)
        return 0.0

    def succeeded(self, client: str) -> None:
        """The attempt's password was right: the client starts afresh."""
        self._clients.pop(client, None)

    def failures(self, client: str) -> int:
        entry = self._clients.get(client)
        return entry.failures if entry is not None else 0

    def __len__(self) -> int:
        return len(self._clients)

    def _forget_idle(self, now: float) -> None:
        while self._clients:
            _, oldest = next(iter(self._clients.items()))
            if now - oldest.last_seen < self.policy.forget_after or oldest.blocked_until > now:
                return
            self._clients.popitem(last=False)
