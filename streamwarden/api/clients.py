"""The API's long-lived connections (WebSockets, MJPEG streams), so a shutdown can end them.

On SIGTERM uvicorn stops accepting, then waits `timeout_graceful_shutdown` for open
connections to finish, then cancels their handlers (an "Exception in ASGI application"
traceback each) and only then runs the lifespan shutdown. A WebSocket or an MJPEG response
never finishes by itself, so before uvicorn drains, the server asks every registered client to
say goodbye (a WebSocket closes with 1001 "going away", an MJPEG stream ends) and waits briefly
for their handlers to return.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterator

GOING_AWAY = 1001
GOING_AWAY_REASON = "the service is shutting down"


class OpenClients:
    """Registry of open long-lived clients; used on the asyncio thread only."""

    def __init__(self) -> None:
        self.stopping = False
        self._goodbyes: dict[int, Callable[[], None]] = {}
        self._ids = itertools.count()

    def __len__(self) -> int:
        return len(self._goodbyes)

    @contextlib.contextmanager
    def open(self, goodbye: Callable[[], None]) -> Iterator[None]:
        """While the block runs the client is open; `goodbye()` must make its handler end
        soon (it only signals; it never blocks). A client opened during shutdown is told at
        once."""
        key = next(self._ids)
        self._goodbyes[key] = goodbye
        if self.stopping:
            goodbye()
        try:
            yield
        finally:
            del self._goodbyes[key]

    async def close_all(self, timeout: float = 1.5) -> None:
        """Tell every client goodbye and wait (at most `timeout`) for their handlers to end."""
        self.stopping = True
        for goodbye in list(self._goodbyes.values()):
            goodbye()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._goodbyes and loop.time() < deadline:
            await asyncio.sleep(0.02)
