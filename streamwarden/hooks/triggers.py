"""From notifications to hook triggers, and a trigger's environment and JSON payload.

One mapping for both hooks and webhooks, so a command and a webhook receiver learn the same
facts under the same names: `segment_path` is `STREAMWARDEN_SEGMENT_PATH` in a command's
environment and `"segment_path"` in a webhook's `details`. Pure: it reads a message dict and
returns plain data.

Which notifications trigger what:
- `state` → `stream_ready` (now `streaming`), `stream_lost` (was `streaming`, now retrying or
  failed), `stream_failed` (now `failed`; after a loss, so both run, lost first)
- `segment_closed` → `segment_complete` (a segment the index kept: complete or repaired)
- `event` (a tracked object's detection event) → `event_start` (change `new`), `event_update`
  (`update`: a zone entered, stationary or moving again, a better picture), `event_end`
  (`end`): once each per object, never per frame
- `recording_error` → `disk_full` when a stream's outage for a full disk begins,
  `disk_full_end` when it ends (each stream that records reports its own)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HOOK_NAMES = ("stream_ready", "stream_lost", "stream_failed", "segment_complete",
              "event_start", "event_update", "event_end", "disk_full", "disk_full_end")
ENV_PREFIX = "STREAMWARDEN_"
# Detail keys holding a time (Unix seconds); the environment also gets an ISO 8601 variant.
TIMESTAMPS = frozenset({"segment_start", "segment_end", "event_start", "event_end", "since"})

Value = str | int | float | None

_STATE_DETAILS = ("state", "previous_state", "reason", "retry_count")
_SEGMENT_DETAILS = {"segment_path": "path", "recording_id": "recording_id",
                    "segment_start": "start", "segment_end": "end",
                    "segment_duration": "duration", "segment_bytes": "bytes",
                    "segment_status": "status"}
_EVENT_DETAILS = {"event_id": "event_id", "object_id": "object_id", "label": "label",
                  "event_start": "start", "event_end": "end", "confidence": "confidence",
                  "detections": "detections", "model": "model", "end_reason": "reason"}
_DISK_DETAILS = {"recording_error": "recording_error", "previous_error": "previous",
                 "since": "since", "lost_seconds": "lost_seconds"}
_EVENT_HOOKS = {"new": "event_start", "update": "event_update", "end": "event_end"}


@dataclass(frozen=True)
class Trigger:
    """One thing that happened, as hooks and webhooks are told it."""

    hook: str  # one of HOOK_NAMES
    stream_id: str
    time: float  # Unix seconds, when the service noticed
    details: dict[str, Value] = field(default_factory=dict)


def triggers(message: dict[str, Any]) -> list[Trigger]:
    """The triggers a notification fires, in the order they should run (often none)."""
    kind, stream_id = message.get("type"), message.get("stream_id")
    if not isinstance(stream_id, str) or not stream_id:
        return []
    time = float(message.get("ts") or 0.0)
    if kind == "state":
        return _state(message, stream_id, time)
    if kind == "segment_closed":
        return [Trigger("segment_complete", stream_id, time, _pick(message, _SEGMENT_DETAILS))]
    if kind == "event":
        return _event(message, stream_id, time)
    if kind == "recording_error":
        return _disk(message, stream_id, time)
    return []


def _pick(message: dict[str, Any], names: dict[str, str]) -> dict[str, Value]:
    return {name: message.get(key) for name, key in names.items()}


def _state(message: dict[str, Any], stream_id: str, time: float) -> list[Trigger]:
    new, old = message.get("state"), message.get("previous_state")
    details: dict[str, Value] = {key: message.get(key) for key in _STATE_DETAILS}
    hooks = []
    if new == "streaming" and old != "streaming":
        hooks.append("stream_ready")
    if old == "streaming" and new in ("retrying", "failed"):
        hooks.append("stream_lost")
    if new == "failed" and old != "failed":
        hooks.append("stream_failed")
    return [Trigger(hook, stream_id, time, dict(details)) for hook in hooks]


def _event(message: dict[str, Any], stream_id: str, time: float) -> list[Trigger]:
    hook = _EVENT_HOOKS.get(str(message.get("change")))
    if hook is None:
        return []
    details = _pick(message, _EVENT_DETAILS)
    entered = [z.get("zone") for z in message.get("zones") or [] if isinstance(z, dict)]
    details["zones"] = ",".join(str(zone) for zone in entered) or None  # entered so far
    if hook == "event_update":
        details["update_reasons"] = ",".join(str(r) for r in message.get("reasons") or []) or None
    if hook != "event_end":
        details.pop("end_reason")
    return [Trigger(hook, stream_id, time, details)]


def _disk(message: dict[str, Any], stream_id: str, time: float) -> list[Trigger]:
    now, before = message.get("recording_error"), message.get("previous")
    details = _pick(message, _DISK_DETAILS)
    if before == "disk_full" and now != "disk_full":
        return [Trigger("disk_full_end", stream_id, time, details)]
    if now == "disk_full" and before != "disk_full":
        return [Trigger("disk_full", stream_id, time, details)]
    return []


def iso(seconds: float) -> str:
    """A Unix time as ISO 8601 in UTC with milliseconds ("2024-05-01T12:00:00.250Z")."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _text(value: Value) -> str:
    if isinstance(value, float):
        return repr(round(value, 3)) if math.isfinite(value) else ""
    return str(value)


def environment(trigger: Trigger) -> dict[str, str]:
    """The `STREAMWARDEN_*` variables a hook command gets (a detail that is unknown, None,
    is left out rather than set empty)."""
    env = {f"{ENV_PREFIX}HOOK": trigger.hook, f"{ENV_PREFIX}STREAM_ID": trigger.stream_id,
           f"{ENV_PREFIX}TIME": _text(trigger.time),
           f"{ENV_PREFIX}TIME_ISO": iso(trigger.time)}
    for key, value in trigger.details.items():
        if value is None:
            continue
        name = f"{ENV_PREFIX}{key.upper()}"
        env[name] = _text(value)
        if key in TIMESTAMPS and isinstance(value, int | float):
            env[f"{name}_ISO"] = iso(float(value))
    return env


def payload(trigger: Trigger) -> dict[str, Any]:
    """A webhook's JSON body, without its delivery id (the sender adds `id`)."""
    return {"type": trigger.hook, "stream_id": trigger.stream_id, "time": trigger.time,
            "details": dict(trigger.details)}
