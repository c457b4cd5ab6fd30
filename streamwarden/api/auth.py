"""Authentication for the API: who a request comes from (the gate), and the `/auth` routes.

A request is authenticated by `Authorization: Bearer <token>` (the API token, an admin, or a
login session's token from `POST /auth/login`) or, where a browser cannot set a header
(`<video>`, `<img>`, WebSocket), by a signed `?access_token=` bound to one path and to the
session that asked for it (`POST /auth/url-token`; users/sessions.py). The gate binds the
caller for the route's permission check (access.py); without valid credentials it answers
401, the same sentence whatever was wrong. Paths in `[api] public_paths` (by default /health
and /metrics), the dashboard's page and files, `/auth/status` and `/auth/login` are open;
credentials sent there still count (a user limited to some streams sees only those).

Logins are slowed per client address (users/backoff.py: 429 with Retry-After) and checked
off the event loop (argon2id takes tens of milliseconds by design), at most two at a time.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamwarden.api.access import (
    UNAUTHORIZED_DETAIL,
    bind,
    requires,
)
from streamwarden.api.errors import ApiError, refuse_websocket
from streamwarden.api.schemas import (
    AuthStatus,
    ErrorBody,
    LoginRequest,
    LoginSession,
    Responses,
    UrlToken,
    UrlTokenRequest,
    WhoAmI,
)
from streamwarden.users.backoff import BackoffPolicy, LoginBackoff
from streamwarden.users.gate import ANONYMOUS, Caller, Gate
from streamwarden.users.permissions import Action, Principal

if TYPE_CHECKING:
    from streamwarden.config.model import UsersSection
    from streamwarden.service import Service
    from streamwarden.users.accounts import Accounts

UNAUTHORIZED = json.dumps({"error": "unauthorized", "detail": UNAUTHORIZED_DETAIL}).encode()
OPEN_PATHS = frozenset({"/", "/auth/status", "/auth/login"})
LOGIN_REFUSED = "wrong user name or password"
CONCURRENT_LOGINS = 2
SessionCaller = Annotated[Caller, requires(Action.SESSION)]


class AuthGate:
    """ASGI middleware: authenticate every HTTP request and WebSocket handshake."""

    def __init__(self, app: ASGIApp, gate: Gate, public_paths: list[str]):
        self.app = app
        self.gate = gate
        self.open = OPEN_PATHS | set(public_paths)

    def _caller(self, scope: Scope) -> Caller | None:
        if not self.gate.enabled:
            return ANONYMOUS
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization")
        caller = self.gate.from_header(auth.decode("latin-1") if auth else None)
        if caller is None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            url_token = (query.get("access_token") or [""])[0]
            caller = self.gate.from_url_token(scope["path"], url_token) if url_token else None
        path = scope["path"]
        if caller is None and (path in self.open or path.startswith("/static/")):
            return ANONYMOUS  # the dashboard shell and public paths hold no private data
        return caller

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        caller = self._caller(scope)
        if caller is not None:
            bind(scope, caller)
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await refuse_websocket(scope, send, 401, "unauthorized", UNAUTHORIZED_DETAIL,
                                   [(b"www-authenticate", b"Bearer")])
            return
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": UNAUTHORIZED})


class BodyLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` with 413, before parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError(self.max_bytes)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLargeError:
            await _too_large(send, self.max_bytes)


class BodyTooLargeError(HTTPException):
    """A body without Content-Length (chunked) that grows past the cap while it is read.

    An HTTPException, because FastAPI turns any other exception raised while it reads a body
    into "400 There was an error parsing the body"; this one it re-raises, and the app's
    handler answers 413 in the API's shape.
    """

    def __init__(self, limit: int):
        super().__init__(413, _too_large_detail(limit))


def _too_large_detail(limit: int) -> str:
    return f"request body over {limit} bytes"


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"error": "too_large", "detail": _too_large_detail(limit)}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class Logins:
    """Checks names and passwords: per-address backoff first, then argon2id off the loop."""

    def __init__(self, accounts: Accounts, users: UsersSection):
        self.accounts = accounts
        self.backoff = LoginBackoff(BackoffPolicy(free_failures=users.login_free_attempts,
                                                  max_delay=users.login_backoff_max))
        self._slots = asyncio.Semaphore(CONCURRENT_LOGINS)

    async def check(self, client: str, name: str, password: str) -> Principal:
        wait = self.backoff.attempt(client)
        if wait > 0:
            seconds = math.ceil(wait)
            raise ApiError(429, "too_many_attempts",
                           f"too many failed logins from this address: try again in {seconds} s",
                           headers={"Retry-After": str(seconds)})
        async with self._slots:
            principal = await asyncio.to_thread(self.accounts.authenticate, name, password)
        if principal is None:
            raise ApiError(401, "unauthorized", LOGIN_REFUSED)
        self.backoff.succeeded(client)
        return principal


def _who(principal: Principal) -> WhoAmI:
    return WhoAmI(name=principal.name, role=principal.role,
                  streams=None if principal.streams is None else sorted(principal.streams),
                  actions=principal.actions())


_LOGIN_ERRORS: Responses = {401: {"model": ErrorBody}, 422: {"model": ErrorBody},
                            429: {"model": ErrorBody, "description": "Too many failed logins "
                                                                     "from this address"}}
_SESSION_ERRORS: Responses = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["auth"])
    api_config = service.config.api
    gate = service.gate
    logins = Logins(service.accounts, service.config.users)

    @router.get("/auth/status", response_model=AuthStatus)
    async def auth_status() -> AuthStatus:
        """Whether the API wants credentials, and whether it has users who log in (open to
        all, so a UI can ask before it fails)."""
        return AuthStatus(token_required=gate.enabled, login=bool(service.config.users.file))

    @router.post("/auth/login", response_model=LoginSession, responses=_LOGIN_ERRORS)
    async def login(request: Request, body: LoginRequest) -> LoginSession:
        """A user's name and password → a session token for `Authorization: Bearer`. A wrong
        password and an unknown name get the same 401; failures slow the address down."""
        client = request.client.host if request.client else "?"
        principal = await logins.check(client, body.username, body.password)
        token, session = gate.sessions.open(principal)
        return LoginSession(token=token, expires_in=session.remaining(time.time()),
                            user=_who(principal))

    @router.post("/auth/logout", status_code=204, responses=_SESSION_ERRORS)
    async def logout(caller: SessionCaller) -> Response:
        """End this session (its URL tokens stop working too). The API token has none."""
        if caller.sid is not None:
            gate.sessions.close(caller.sid)
        return Response(status_code=204)

    @router.get("/auth/me", response_model=WhoAmI, responses=_SESSION_ERRORS)
    async def whoami(caller: SessionCaller) -> WhoAmI:
        """Who this is: name, role, stream list, and the actions the role allows."""
        return _who(caller.principal)

    @router.post("/auth/url-token", response_model=UrlToken,
                 responses={**_SESSION_ERRORS, 422: {"model": ErrorBody}})
    async def url_token(request: UrlTokenRequest, caller: SessionCaller) -> UrlToken:
        """A token for one path, for URLs that cannot carry a header (`<video>`, WebSocket);
        it carries the caller's session and ends with it."""
        if caller.sid is None:
            raise ApiError(422, "no_token_configured", "the API needs no credentials; URLs "
                                                       "need no token")
        if not request.path.startswith("/") or ".." in request.path:
            raise ApiError(422, "invalid_path", "path must be an absolute API path")
        ttl = min(request.ttl or api_config.url_token_ttl, 24 * 3600)
        token, lifetime = gate.url_token(caller, request.path, ttl, time.time())
        return UrlToken(token=token, url=f"{request.path}?access_token={token}",
                        expires_in=lifetime)

    return router
