"""Who may do what: roles and actions, and per-user stream lists. Plain data, no web framework.

Every API route declares one `Action` (api/access.py `requires`); a principal (the API token,
a logged-in user, or everyone when the API is open) may perform it if its role grants it. A
user may also be limited to a list of streams: it then sees and acts on those only, and every
other stream is, to it, a stream that does not exist (the API's 404, RTSP's 404). Actions that
show every stream at once and cannot be filtered (`/metrics`) or that change the service's
configuration need a principal without a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, get_args

Role = Literal["admin", "operator", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)


class Action(StrEnum):
    VIEW = "view"  # streams and their health, snapshots, MJPEG, live video, /ws, inference status
    RECORDINGS = "recordings"  # list, download and clip recordings
    EVENTS = "events"  # detection events and their pictures
    RECORD = "record"  # start and stop recording, `enable_recording`
    DETECT = "detect"  # turn detection on and off (`enable_inference`)
    METRICS = "metrics"  # /metrics when it is not public: every stream at once
    CONFIGURE = "configure"  # add, remove, re-source streams; reload; users
    SESSION = "session"  # one's own session: URL tokens, who am I, logout


_VIEWER = frozenset({Action.VIEW, Action.RECORDINGS, Action.EVENTS, Action.SESSION})
_OPERATOR = _VIEWER | {Action.RECORD, Action.DETECT, Action.METRICS}
GRANTS: Mapping[Role, frozenset[Action]] = {
    "viewer": _VIEWER,
    "operator": _OPERATOR,
    "admin": frozenset(Action),
}
# Actions that concern every stream at once: a principal limited to some streams may not.
WHOLE_SERVICE = frozenset({Action.METRICS, Action.CONFIGURE})

# What each field of `PATCH /streams/{id}` changes; any field not named here is configuration.
_PATCH_FIELDS: Mapping[str, Action] = {"enable_inference": Action.DETECT,
                                       "enable_recording": Action.RECORD}


@dataclass(frozen=True)
class Principal:
    """Whoever a request comes from, as far as permissions go."""

    name: str
    role: Role
    streams: frozenset[str] | None = None  # None: every stream

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}: use one of {', '.join(ROLES)}")
        if self.role == "admin" and self.streams is not None:
            raise ValueError("an admin acts on every stream: give it no stream list, or make "
                             "it an operator or viewer")

    def may(self, action: Action) -> bool:
        if action not in GRANTS[self.role]:
            return False
        return self.streams is None or action not in WHOLE_SERVICE

    def sees(self, stream_id: str) -> bool:
        return self.streams is None or stream_id in self.streams

    def actions(self) -> list[str]:
        """What this principal may do, for a user interface to show only that."""
        return sorted(action.value for action in Action if self.may(action))

    def may_change(self, fields: Iterable[str]) -> bool:
        """Whether a stream change touching `fields` is allowed (see `patch_actions`)."""
        return all(self.may(action) for action in patch_actions(fields))


def patch_actions(fields: Iterable[str]) -> set[Action]:
    """The actions a change of these stream fields needs: recording and detection toggles are
    an operator's; anything else (source, timeouts) is configuration."""
    return {_PATCH_FIELDS.get(name, Action.CONFIGURE) for name in fields}


def filter_message(message: dict[str, Any], principal: Principal) -> dict[str, Any] | None:
    """A notification as `principal` may see it: None for another stream's, a `streams` list
    narrowed to its own; messages about no stream in particular pass unchanged."""
    if principal.streams is None:
        return message
    stream_id = message.get("stream_id")
    if isinstance(stream_id, str) and not principal.sees(stream_id):
        return None
    entries = message.get("streams")
    if isinstance(entries, list):
        visible = [entry for entry in entries
                   if not isinstance(entry, dict) or principal.sees(str(entry.get("id")))]
        return {**message, "streams": visible}
    return message


EVERYONE = Principal("anonymous", "admin")  # an API without a token or users: open to all
