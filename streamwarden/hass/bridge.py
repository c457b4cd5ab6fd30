"""The Home Assistant bridge: discovery configs, entity states and camera pictures out over
the MQTT connection; switch commands in, carried out through the service's own controls.

Threads: paho's thread only receives (a command, a connect) and hands over to the asyncio
thread with `call_soon_threadsafe`; everything else (states, pictures, acting) runs there,
like the API. Publishing only queues (`MqttBridge.send`), so a slow or absent broker never
holds anything up. States are published when they change (notifications) and again every
`[mqtt] snapshot_interval` with a fresh picture, so changes made elsewhere (the API, the
dashboard) reach Home Assistant within that interval at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

from streamwarden.hass.discovery import (
    Topics,
    discovery_messages,
    parse_switch_payload,
    removal_topics,
    safe_id,
)
from streamwarden.mqtt import MqttBridge, select

log = logging.getLogger("streamwarden.hass")

DETECTION_SNAPSHOT_GAP = 2.0  # seconds: at most one extra picture per stream this often


@dataclass(frozen=True)
class CameraStatus:
    online: bool
    recording: bool
    detecting: bool


class CameraControl(Protocol):
    """What the bridge may read and do (hass/control.py: the service's own controls)."""

    def stream_ids(self) -> list[str]: ...

    def status(self, stream_id: str) -> CameraStatus | None: ...

    def set_recording(self, stream_id: str, on: bool) -> Awaitable[None]: ...

    def set_detection(self, stream_id: str, on: bool) -> Awaitable[None]: ...

    def snapshot(self, stream_id: str) -> Awaitable[bytes | None]: ...


def _on_off(value: bool) -> str:
    return "ON" if value else "OFF"


class HassBridge:
    def __init__(self, mqtt: MqttBridge, control: CameraControl, labels: list[str],
                 off_delay: float, interval: float, discovery_prefix: str):
        self.mqtt = mqtt
        self.control = control
        self.labels = labels
        self.off_delay = off_delay
        self.interval = interval
        self.topics = Topics(mqtt.prefix, discovery_prefix.rstrip("/"),
                             safe_id(mqtt.config.client_id))
        self.stopping = False
        self.commands = 0  # switch commands carried out
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._pictures: dict[str, float] = {}  # stream id -> when its last picture was asked
        self._pending: set[asyncio.Task] = set()

    # ---- lifecycle (asyncio thread) ---------------------------------------------------------

    def start(self) -> None:
        """Before the MQTT connection starts, so the first connect already announces."""
        self._loop = asyncio.get_running_loop()
        self.mqtt.on_connected.append(self._connected)
        for topic_filter in self.topics.command_filters():
            self.mqtt.subscribe(topic_filter, self._command_received)
        self._task = self._loop.create_task(self._refresh_forever(), name="hass-refresh")

    async def stop(self) -> None:
        """Entities go unavailable (the bridge's `offline`), but stay known to Home Assistant."""
        self.stopping = True
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- from paho's thread ----------------------------------------------------------------

    def _connected(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._announce_all)

    def _command_received(self, topic: str, payload: bytes) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._command, topic, payload)

    # ---- asyncio thread --------------------------------------------------------------------

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _announce_all(self) -> None:
        for stream_id in self.control.stream_ids():
            self._announce(stream_id)

    def _announce(self, stream_id: str) -> None:
        for topic, payload in discovery_messages(self.topics, stream_id, self.labels,
                                                 self.off_delay):
            self.mqtt.send(topic, json.dumps(payload), retain=True)
        self._publish_states(stream_id)
        self._spawn(self._publish_picture(stream_id))

    def _publish_states(self, stream_id: str) -> None:
        status = self.control.status(stream_id)
        if status is None:
            return
        self.mqtt.send(self.topics.online(stream_id), _on_off(status.online), retain=True)
        for switch, on in (("recording", status.recording), ("detection", status.detecting)):
            self.mqtt.send(self.topics.switch_state(stream_id, switch), _on_off(on), retain=True)

    async def _publish_picture(self, stream_id: str) -> None:
        self._pictures[stream_id] = time.monotonic()
        try:
            jpeg = await self.control.snapshot(stream_id)
        except Exception:  # a stream removed meanwhile, a decoder that failed: next time
            log.debug("no picture of %s for Home Assistant", stream_id, exc_info=True)
            return
        if jpeg:
            self.mqtt.send(self.topics.snapshot(stream_id), jpeg, retain=True, qos=0)

    def _command(self, topic: str, payload: bytes) -> None:
        parsed = self.topics.parse_command(topic)
        on = parse_switch_payload(payload)
        if parsed is None or on is None:
            log.warning("Home Assistant command ignored: %r on %s (expected ON or OFF on "
                        "%s/<stream>/recording|detection/set)", payload[:32], topic,
                        self.topics.prefix)
            return
        self._spawn(self._act(*parsed, on))

    async def _act(self, stream_id: str, switch: str, on: bool) -> None:
        action = self.control.set_recording if switch == "recording" else \
            self.control.set_detection
        try:
            await action(stream_id, on)
            self.commands += 1
            log.info("Home Assistant: %s %s for stream %s", switch, "on" if on else "off",
                     stream_id, extra={"stream_id": stream_id, "event": "hass_command"})
        except Exception as exc:  # unknown stream, a model that cannot load: say so, go on
            log.warning("Home Assistant: turning %s %s for stream %s failed: %s", switch,
                        "on" if on else "off", stream_id, exc, extra={"stream_id": stream_id})
        self._publish_states(stream_id)  # the state as it is now, whatever happened

    def handle(self, message: dict[str, Any]) -> None:
        """A notification (a `Notifier` listener, asyncio thread); never blocks."""
        kind, stream_id = message.get("type"), message.get("stream_id")
        if not stream_id or self.stopping:
            return
        if kind == "stream_added" and self.mqtt.connected:
            self._announce(stream_id)
        elif kind == "stream_removed":
            for topic in removal_topics(self.topics, stream_id, self.labels):
                self.mqtt.send(topic, b"", retain=True)  # empty retained config: entity gone
        elif kind in ("state", "recording"):
            self._publish_states(stream_id)
        elif kind == "detection":
            # `[mqtt] objects` limits the sensors as it limits the detection topic
            selected = select(message, self.mqtt.selectors)
            if selected is not None:
                self._detected(stream_id, selected.get("detections") or [])

    def _detected(self, stream_id: str, detections: list[dict[str, Any]]) -> None:
        # a box whose object its scores have not confirmed as an event yet (a clock overlay
        # the model half-believes is a person) turns no sensor on; older messages lack the key
        found = {str(d.get("label")) for d in detections
                 if d.get("confirmed", True)} & set(self.labels)
        for label in sorted(found):
            self.mqtt.send(self.topics.detected(stream_id, label), "ON")
        last = self._pictures.get(stream_id, 0.0)
        if found and time.monotonic() - last >= DETECTION_SNAPSHOT_GAP:
            self._spawn(self._publish_picture(stream_id))

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.mqtt.connected:
                continue
            for stream_id in self.control.stream_ids():
                self._publish_states(stream_id)
                await self._publish_picture(stream_id)

