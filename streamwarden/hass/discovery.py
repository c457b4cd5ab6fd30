"""Home Assistant's MQTT discovery for each camera, as plain data: which retained config
messages create which entities, and which topics those entities read and write.

Per stream, one device with:

- a camera (`camera`): the JPEG snapshot the service publishes to `<prefix>/<id>/snapshot`;
- a binary sensor `online`: `<prefix>/<id>/online`, ON while the stream is streaming;
- a binary sensor per detection label (`<label>_detected`): `<prefix>/<id>/<label>/detected`,
  ON on a detection, turned OFF by Home Assistant after `off_delay` seconds without one;
- switches `recording` and `detection`: state on `<prefix>/<id>/recording/state` (and
  `detection/state`), commands (`ON`/`OFF`) on `<prefix>/<id>/recording/set` (`detection/set`).

Every entity is unavailable unless `<prefix>/status` says `online`: the bridge's retained
status, replaced by its last will (`offline`) when the service goes away. An empty retained
config removes an entity (a stream that was deleted). The ids come from the stream ids and
the MQTT client id, so two services on one broker (distinct client ids) never collide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

SWITCHES = ("recording", "detection")
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_id(text: str) -> str:
    """What may stand in a discovery topic or a unique id: letters, digits, `_`, `-`."""
    return _SAFE.sub("_", text).strip("_") or "x"


@dataclass(frozen=True)
class Topics:
    """Where one service's Home Assistant entities live on the broker."""

    prefix: str  # `[mqtt] topic_prefix`
    discovery_prefix: str  # `[mqtt] discovery_prefix`, Home Assistant's "homeassistant"
    node: str  # from `[mqtt] client_id`: one node per service

    @property
    def availability(self) -> str:
        return f"{self.prefix}/status"

    def snapshot(self, stream_id: str) -> str:
        return f"{self.prefix}/{stream_id}/snapshot"

    def online(self, stream_id: str) -> str:
        return f"{self.prefix}/{stream_id}/online"

    def detected(self, stream_id: str, label: str) -> str:
        return f"{self.prefix}/{stream_id}/{safe_id(label)}/detected"

    def switch_state(self, stream_id: str, switch: str) -> str:
        return f"{self.prefix}/{stream_id}/{switch}/state"

    def switch_command(self, stream_id: str, switch: str) -> str:
        return f"{self.prefix}/{stream_id}/{switch}/set"

    def command_filters(self) -> list[str]:
        """What the bridge subscribes to: every stream's switch commands."""
        return [f"{self.prefix}/+/{switch}/set" for switch in SWITCHES]

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """`<prefix>/<id>/<switch>/set` → (stream id, switch); anything else → None."""
        head = f"{self.prefix}/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[2] != "set" or parts[1] not in SWITCHES or not parts[0]:
            return None
        return parts[0], parts[1]

    def config_topic(self, component: str, stream_id: str, entity: str) -> str:
        object_id = safe_id(f"{stream_id}_{entity}")
        return f"{self.discovery_prefix}/{component}/{self.node}/{object_id}/config"

    def unique_id(self, stream_id: str, entity: str) -> str:
        return safe_id(f"{self.node}_{stream_id}_{entity}")


def parse_switch_payload(payload: bytes) -> bool | None:
    """`ON`/`OFF` (Home Assistant's defaults; also true/false, 1/0) → bool; else None."""
    text = payload.decode("utf-8", "replace").strip().lower()
    if text in ("on", "true", "1"):
        return True
    if text in ("off", "false", "0"):
        return False
    return None


@cache
def _version() -> str:
    try:
        return version("streamwarden")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _device(topics: Topics, stream_id: str) -> dict[str, Any]:
    return {"identifiers": [topics.unique_id(stream_id, "camera")], "name": stream_id,
            "manufacturer": "streamwarden", "model": "camera stream", "sw_version": _version()}


def _entity(topics: Topics, stream_id: str, entity: str, name: str) -> dict[str, Any]:
    return {"name": name, "unique_id": topics.unique_id(stream_id, entity),
            "object_id": safe_id(f"{stream_id}_{entity}"),
            "availability_topic": topics.availability, "payload_available": "online",
            "payload_not_available": "offline", "device": _device(topics, stream_id)}


def discovery_messages(topics: Topics, stream_id: str, labels: list[str],
                       off_delay: float) -> list[tuple[str, dict[str, Any]]]:
    """The retained config messages that create one stream's entities: (topic, payload)."""
    messages: list[tuple[str, dict[str, Any]]] = []
    camera = _entity(topics, stream_id, "camera", "Camera")
    camera["topic"] = topics.snapshot(stream_id)
    messages.append((topics.config_topic("camera", stream_id, "camera"), camera))
    online = _entity(topics, stream_id, "online", "Online")
    online.update(state_topic=topics.online(stream_id), device_class="connectivity",
                  entity_category="diagnostic")
    messages.append((topics.config_topic("binary_sensor", stream_id, "online"), online))
    for label in labels:
        entity = f"{safe_id(label)}_detected"
        sensor = _entity(topics, stream_id, entity, f"{label.capitalize()} detected")
        sensor.update(state_topic=topics.detected(stream_id, label),
                      off_delay=max(1, round(off_delay)),
                      device_class="occupancy" if label == "person" else "motion")
        messages.append((topics.config_topic("binary_sensor", stream_id, entity), sensor))
    for switch in SWITCHES:
        control = _entity(topics, stream_id, switch, switch.capitalize())
        control.update(state_topic=topics.switch_state(stream_id, switch),
                       command_topic=topics.switch_command(stream_id, switch),
                       icon="mdi:record-rec" if switch == "recording" else "mdi:motion-sensor")
        messages.append((topics.config_topic("switch", stream_id, switch), control))
    return messages


def removal_topics(topics: Topics, stream_id: str, labels: list[str]) -> list[str]:
    """The config topics to clear (empty retained message) when a stream is deleted."""
    return [topic for topic, _ in discovery_messages(topics, stream_id, labels, 1)]
