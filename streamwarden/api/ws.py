"""`WS /ws`: a snapshot on connect, periodic stats, and every change as it happens.

Messages are JSON objects with a `type`:
- `snapshot` / `stats`: `{"streams": [health entries]}` (on connect, then every interval)
- `state`: `{"stream_id", "state", "previous_state", "reason", "retry_count"}`
- `stream_added` / `stream_removed`: `{"stream_id"}`
- `recording`: `{"stream_id", "recording": bool, "reason"}`
- `segment_closed`: `{"stream_id", "recording_id", "duration", "bytes", "path", "start", "end",
  "status"}` (a segment kept in the index: `complete` or `repaired`)
- `recording_error`: `{"stream_id", "recording_error", "previous", "since", "lost_seconds"}`
  once when an outage begins (`"disk_full"`/`"write_error"`, `since` its start) and once
  when it ends (`null`, with the seconds it lost), never per retry
- `detection`: `{"stream_id", "model", "time", "pts", "detections": [{"label", "confidence",
  "box", "object_id", "zones", "confirmed"}]}` for every frame in which the model found
  something (inference; masked detections are not reported; `confirmed` false: the object's
  scores have not made it an event yet, `[inference] event_score`)
- `event`: `{"stream_id", "change": "new"|"update"|"end", "event_id", "object_id", "label",
  "model", "start", "end", "confidence", "box", "detections", "zones": [{"zone", "entered"}],
  "current_zones", "stationary", "active", "reasons"}` when a tracked object is confirmed
  (its `start` is when it was first seen), enters
  a zone (reason `zone:<name>`), becomes `stationary` or `moving` again, gets a better
  picture (`picture`), and leaves (`"reason"`: `gap`, not seen for its timeout, or
  `stream_removed`); hooks and webhooks call these `event_start`, `event_update`, `event_end`
- `dropped`: the server is closing this connection because it did not keep up (close 1008)

When the service shuts down the connection is closed with 1001 ("going away").

A client may send `{"type": "subscribe", "interval": 2}` to change its stats interval
(0.5 s to 300 s). Authentication, when a token is set, is by `?access_token=` (see auth.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from streamwarden.api.access import caller_of, requires
from streamwarden.api.clients import GOING_AWAY, GOING_AWAY_REASON
from streamwarden.api.schemas import HealthEntry
from streamwarden.api.views import stream_health
from streamwarden.notify import GOODBYE, Subscriber
from streamwarden.users.permissions import Action, Principal, filter_message

if TYPE_CHECKING:
    from streamwarden.service import Service


def create_router(service: Service) -> APIRouter:
    router = APIRouter()
    hub = service.notifier

    def streams() -> list[dict]:
        manager = service.manager
        return [HealthEntry(**stream_health(p, manager.features)).model_dump(mode="json")
                for p in manager.all()]

    @router.websocket("/ws", dependencies=[requires(Action.VIEW)])
    async def websocket(socket: WebSocket) -> None:
        principal = caller_of(socket).principal
        await socket.accept()
        subscriber = hub.subscribe()
        hub.offer(subscriber, {"type": "snapshot", "streams": streams()})
        stats = _Stats(service.config.app.health_check_interval,
                       lambda: hub.offer(subscriber, {"type": "stats", "streams": streams()}))
        tasks = [asyncio.create_task(stats.tick()), asyncio.create_task(stats.listen(socket))]
        try:
            with service.clients.open(lambda: hub.say_goodbye(subscriber)):
                await _forward(socket, subscriber, principal)
        except (WebSocketDisconnect, RuntimeError, TimeoutError, OSError):
            pass
        finally:
            hub.unsubscribe(subscriber)
            for task in tasks:
                task.cancel()

    return router


class _Stats:
    """A client's periodic stats message, at the interval it asked for (`subscribe`)."""

    def __init__(self, interval: float, send: Callable[[], None]):
        self.interval = interval
        self._send = send
        self._changed = asyncio.Event()

    async def tick(self) -> None:
        while True:
            try:  # a new interval restarts the wait at once
                await asyncio.wait_for(self._changed.wait(), timeout=self.interval)
                self._changed.clear()
            except TimeoutError:
                self._send()

    async def listen(self, socket: WebSocket) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while True:
                text = await socket.receive_text()
                with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
                    message = json.loads(text)
                    if message.get("type") == "subscribe":
                        self.interval = min(300.0, max(0.5, float(message["interval"])))
                        self._changed.set()


async def _forward(socket: WebSocket, subscriber: Subscriber, principal: Principal) -> None:
    """Send the subscriber's events until it is dropped (1008) or the service stops (1001);
    a user limited to some streams gets only theirs."""
    while True:
        event = await subscriber.queue.get()
        if event is GOODBYE:
            await socket.close(code=GOING_AWAY, reason=GOING_AWAY_REASON)
            return
        visible = filter_message(event, principal)
        if visible is None:
            continue
        await asyncio.wait_for(socket.send_json(visible), timeout=10)
        if event.get("type") == "dropped":
            await socket.close(code=1008)
            return
