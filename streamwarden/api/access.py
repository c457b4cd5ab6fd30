"""Authorization in the API: each route declares the action it needs; stream lists apply
everywhere a stream id is looked up.

The gate (auth.py's middleware) authenticates every request and binds its caller here: into
the ASGI scope, and into a context variable for the rest of that request. A route then
declares what it does with `requires(Action.X)` (a FastAPI dependency, so it runs before the
route; tests/test_users.py walks every route of the app and fails on one that declares
nothing). A caller whose role does not grant the action gets 403.

Stream lists: `params.checked_id`, through which every route's stream id passes, treats a
stream the caller may not see as one that does not exist (the same 404), and the lists
(streams, health, recordings, events, WebSocket messages) leave such streams out, so a new
route that looks a stream up the usual way cannot forget the list.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any

from fastapi import Depends
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute
from starlette.types import Scope

from streamwarden.api.errors import ApiError
from streamwarden.users.gate import ANONYMOUS, Caller
from streamwarden.users.permissions import Action, Principal

CALLER = "streamwarden.caller"  # the scope key
UNAUTHORIZED_DETAIL = "a valid API token, session or URL token is required"
FORBIDDEN_DETAIL = "this account is not allowed to do that"
_current: ContextVar[Caller] = ContextVar("streamwarden_caller", default=ANONYMOUS)

Permission = Callable[[HTTPConnection], Coroutine[Any, Any, Caller]]


def bind(scope: Scope, caller: Caller) -> None:
    """The gate's last step: this request comes from `caller`."""
    scope[CALLER] = caller
    _current.set(caller)


def caller_of(conn: HTTPConnection) -> Caller:
    caller = conn.scope.get(CALLER)
    if not isinstance(caller, Caller):  # only a request that bypassed the gate
        raise ApiError(401, "unauthorized", UNAUTHORIZED_DETAIL)
    return caller


def _permission(actions: tuple[Action, ...]) -> Permission:
    async def permission(conn: HTTPConnection) -> Caller:
        caller = caller_of(conn)
        if not any(caller.principal.may(action) for action in actions):
            raise ApiError(403, "forbidden", FORBIDDEN_DETAIL)
        return caller

    permission.actions = actions  # type: ignore[attr-defined]  # read by declared_actions
    return permission


def requires(action: Action) -> Any:
    """The route needs `action`: `dependencies=[requires(Action.RECORD)]`."""
    return Depends(_permission((action,)))


def requires_any(*actions: Action) -> Any:
    """The route needs one of `actions`, and checks which its request needs itself (a stream
    change: recording, detection or configuration, by the fields it changes)."""
    return Depends(_permission(actions))


def declared_actions(route: BaseRoute) -> tuple[Action, ...] | None:
    """The actions a route declared through `requires`, or None if it declared none."""
    dependant = getattr(route, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dependency = pending.pop()
        actions = getattr(dependency.call, "actions", None)
        if actions is not None:
            return actions
        pending.extend(dependency.dependencies)
    return None


def current() -> Principal:
    """The principal of the request being handled (everyone, outside a request)."""
    return _current.get().principal


def stream_visible(stream_id: str) -> bool:
    return current().sees(stream_id)


def visible_streams() -> list[str] | None:
    """The stream ids the caller is limited to (sorted), or None for every stream."""
    streams = current().streams
    return None if streams is None else sorted(streams)
