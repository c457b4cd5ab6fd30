"""Notifications: what the service tells WebSocket clients and MQTT as things change.

A notification is a small JSON object with a `type` (`state`, `stream_added`, `recording`,
`segment_closed`, `recording_error`, `detection`, ...; see api/ws.py). Streams, recorders,
the index and inference report from their own threads through `publish_threadsafe`; the
asyncio thread hands each to the listeners (the MQTT bridge) and queues it for every client,
each with its own bounded queue. A client whose queue is full (it stopped reading, or reads
slower than notifications come) is dropped and told why, instead of letting memory grow or
holding up the others.

(This was `events.py`/`EventHub`: "event" now means only a detection event and GStreamer's pad
events.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("streamwarden.notify")

# How the rest of the service publishes: `notifier.publish_threadsafe`, callable from any thread.
Notify = Callable[[dict[str, Any]], None]

CLIENT_QUEUE = 256
GOODBYE: dict[str, Any] = {"type": "goodbye"}  # the last item a client's queue holds at shutdown


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: bool = False


class Notifier:
    """The notification bus: any thread publishes, the asyncio thread fans out."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self.subscribers: set[Subscriber] = set()
        self.clients_dropped = 0
        self.published = 0
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self) -> Subscriber:
        subscriber = Subscriber()
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def publish(self, message: dict[str, Any]) -> None:
        """On the asyncio thread: queue `message` for every client, dropping those that lag."""
        message.setdefault("ts", time.time())
        self.published += 1
        for listener in self.listeners:
            try:
                listener(message)
            except Exception:  # a broken bridge must not stop the WebSocket fan-out
                log.exception("notification listener failed")
        for subscriber in list(self.subscribers):
            self.offer(subscriber, message)

    def offer(self, subscriber: Subscriber, message: dict[str, Any]) -> None:
        if subscriber.dropped:
            return
        try:
            subscriber.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.clients_dropped += 1
            log.warning("a WebSocket client was dropped: it did not keep up",
                        extra={"event": "ws_client_dropped"})
            self._end(subscriber, {"type": "dropped", "reason": "too slow"})

    def say_goodbye(self, subscriber: Subscriber) -> None:
        """The service is shutting down: `subscriber` gets nothing more but `GOODBYE`."""
        if not subscriber.dropped:
            self._end(subscriber, GOODBYE)

    def _end(self, subscriber: Subscriber, last: dict[str, Any]) -> None:
        subscriber.dropped = True
        self.subscribers.discard(subscriber)
        while not subscriber.queue.empty():  # free its backlog at once
            subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(last)

    def publish_threadsafe(self, message: dict[str, Any]) -> None:
        """From any thread (GStreamer, database): hand `message` to the asyncio thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.publish, message)
