"""What a config reload changes: two validated configs in, a plan of changes out.

Pure logic (no GStreamer, no service), so every rule is tested with hand-made configs in
tests/unit/test_config_diff.py. The reloader (streamwarden/reload.py) carries the plan out.

The rules, in the order an operator meets them:

- Only what changed *in the file* is applied. A stream whose entry and effective source
  settings are the same in the old and the new file is not touched, whatever changed through
  the API meanwhile (a PATCH, a DELETE): it keeps its connection, segment and counters.
- A stream whose entry changed takes the new entry whole. It is restarted (removed and added
  again) when its URI or an effective source setting differs from what runs (`RESTART_KEYS`,
  the same rule as a PATCH), and changed in place otherwise (recording, inference, restream
  toggles and any other per-stream key).
- `[stream_defaults]` changes restart only the file streams whose effective settings change.
  API streams are not touched by a reload at all; they take new defaults when next restarted.
- A file stream that takes the id of a running API stream replaces it (as at start-up, the
  file wins); a stream removed from the file is stopped only if it still runs as the file's.
- Global keys in `APPLIED_IN_PLACE` are taken by the running service; every other changed
  global key is listed as needing a restart and keeps its running value in the plan's config,
  so the next reload lists it again until the service restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from streamwarden.config.model import Config, SourceSettings, StreamConfig

# A change to any of these rebuilds a stream's source (remove, then add again).
RESTART_KEYS = frozenset(SourceSettings.model_fields) | {"uri"}

# Global keys the running service applies on a reload (see Service.adopt_config); a key is
# "section.name", or a whole optional section. Every other global key needs a restart.
APPLIED_IN_PLACE = frozenset({
    "app.auto_remove_unhealthy", "app.health_check_interval", "app.removal_threshold",
    "app.log_level", "app.watch_config", "app.memory_trim_interval",
    "api.allowed_file_dirs",
    "recording.retention", "recording.event_retention", "recording.max_size",
    "recording.janitor_interval",
    "mqtt",
})
# Sections compared as a whole (a change anywhere in them is one change).
WHOLE_SECTIONS = frozenset({"mqtt", "cluster"})
# Handled per stream, never as global keys.
_PER_STREAM = frozenset({"streams", "stream_defaults"})

Action = Literal["add", "remove", "restart", "update", "replace"]


@dataclass(frozen=True)
class RunningStream:
    """What runs under an id now: where its definition came from and what it runs with."""

    origin: str  # "config" (the file) or "api"
    config: StreamConfig
    settings: SourceSettings


@dataclass(frozen=True)
class StreamChange:
    """One stream to add, remove, restart, change in place, or take over from the API."""

    action: Action
    stream_id: str
    config: StreamConfig | None  # the new definition; None for "remove"
    fields: tuple[str, ...] = ()  # what differs, for the operator

    def describe(self) -> str:
        what = {"add": "added", "remove": "removed", "restart": "restarted",
                "update": "changed in place",
                "replace": "replaces the stream added through the API with the same id"}
        why = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"stream {self.stream_id} {what[self.action]}{why}"


@dataclass(frozen=True)
class ReloadPlan:
    """Everything a reload does, and the config the service runs with afterwards."""

    config: Config  # the new file, with the keys that need a restart kept as they run
    streams: tuple[StreamChange, ...] = ()
    applied: tuple[str, ...] = ()  # global keys taken in place ("recording.retention")
    needs_restart: tuple[str, ...] = ()  # global keys that wait for a restart ("api.listen")

    @property
    def empty(self) -> bool:
        return not (self.streams or self.applied or self.needs_restart)


def plan_reload(old: Config, new: Config, running: Mapping[str, RunningStream]) -> ReloadPlan:
    """The changes that turn a service running `old` (with `running` streams) into `new`."""
    keys = global_changes(old, new)
    applied = tuple(k for k in keys if k in APPLIED_IN_PLACE)
    needs_restart = tuple(k for k in keys if k not in APPLIED_IN_PLACE)
    applied += tuple(f"stream_defaults.{name}" for name in SourceSettings.model_fields
                     if getattr(old.stream_defaults, name) != getattr(new.stream_defaults, name))
    return ReloadPlan(config=keep_running(new, old, needs_restart),
                      streams=tuple(stream_changes(old, new, running)),
                      applied=applied, needs_restart=needs_restart)


# ---- global sections ---------------------------------------------------------------------

def global_changes(old: Config, new: Config) -> list[str]:
    """Every changed global key as "section.name" (or "section" for a whole section)."""
    keys: list[str] = []
    for section in Config.model_fields:
        if section in _PER_STREAM:
            continue
        before, after = getattr(old, section), getattr(new, section)
        if before == after:
            continue
        if (section in WHOLE_SECTIONS or not isinstance(before, BaseModel)
                or not isinstance(after, BaseModel) or type(before) is not type(after)):
            keys.append(section)
            continue
        keys += [f"{section}.{name}" for name in type(after).model_fields
                 if getattr(before, name) != getattr(after, name)]
    return keys


def keep_running(new: Config, old: Config, keys: tuple[str, ...]) -> Config:
    """`new` with each of `keys` set back to its value in `old` (what keeps running).

    Copies without validating again: every value comes from a validated config, and a key
    that waits for a restart must not make the rest of the reload fail."""
    sections: dict[str, Any] = {}
    for key in keys:
        section, _, name = key.partition(".")
        if not name:
            sections[section] = getattr(old, section)
            continue
        current = sections.get(section, getattr(new, section))
        sections[section] = current.model_copy(update={name: getattr(getattr(old, section), name)})
    return new.model_copy(update=sections)


# ---- streams -----------------------------------------------------------------------------

def stream_changes(old: Config, new: Config,
                   running: Mapping[str, RunningStream]) -> list[StreamChange]:
    """Removals first (they free ids), then takeovers, restarts, in-place changes, additions."""
    new_ids = {s.id for s in new.streams}
    changes = [StreamChange("remove", s.id, None) for s in old.streams
               if s.id not in new_ids and _runs_from_file(running.get(s.id))]
    before = {s.id: s for s in old.streams}
    for entry in new.streams:
        change = _stream_change(before.get(entry.id), entry, old.stream_defaults,
                                new.stream_defaults, running.get(entry.id))
        if change is not None:
            changes.append(change)
    order = ("remove", "replace", "restart", "update", "add")
    return sorted(changes, key=lambda c: order.index(c.action))


def _runs_from_file(current: RunningStream | None) -> bool:
    return current is not None and current.origin == "config"


def _stream_change(before: StreamConfig | None, entry: StreamConfig,
                   old_defaults: SourceSettings, new_defaults: SourceSettings,
                   current: RunningStream | None) -> StreamChange | None:
    """What to do with one stream of the new file (None: leave it as it runs)."""
    if before is None:
        edited: tuple[str, ...] = ()
    else:
        edited = edited_fields(before, entry, old_defaults, new_defaults)
        if not edited:
            return None  # unchanged in the file: whatever runs (or not) stays
    if current is None:
        return StreamChange("add", entry.id, entry, edited)
    if current.origin != "config":
        return StreamChange("replace", entry.id, entry)
    restart = restart_fields(current, entry, entry.settings(new_defaults))
    if restart:
        return StreamChange("restart", entry.id, entry, restart)
    in_place = tuple(name for name in StreamConfig.model_fields
                     if getattr(entry, name) != getattr(current.config, name))
    return StreamChange("update", entry.id, entry, in_place) if in_place else None


def edited_fields(before: StreamConfig, after: StreamConfig, old_defaults: SourceSettings,
                  new_defaults: SourceSettings) -> tuple[str, ...]:
    """The keys of a file entry that changed, and the defaults that change its settings."""
    fields = [name for name in StreamConfig.model_fields
              if getattr(before, name) != getattr(after, name)]
    old_settings, new_settings = before.settings(old_defaults), after.settings(new_defaults)
    fields += [f"stream_defaults.{name}" for name in SourceSettings.model_fields
               if name not in fields
               and getattr(old_settings, name) != getattr(new_settings, name)]
    return tuple(fields)


def restart_fields(current: RunningStream, entry: StreamConfig,
                   settings: SourceSettings) -> tuple[str, ...]:
    """The source keys in which the new entry differs from what the stream runs with."""
    fields = ["uri"] if entry.uri != current.config.uri else []
    fields += [name for name in SourceSettings.model_fields
               if getattr(settings, name) != getattr(current.settings, name)]
    return tuple(fields)
