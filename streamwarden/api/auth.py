"""Access control for the API: a bearer token, or a short-lived signed token in the URL.

Browsers cannot put headers on `<video src>` or `new WebSocket()`, so for those an
authenticated client asks `POST /auth/url-token` for a token bound to one path and an expiry,
signed with HMAC-SHA256 keyed by the API token. Every comparison is constant-time, and a
refusal never says which part failed. Paths in `public_paths` (by default /health and
/metrics, for monitoring) stay open. The routes under `/auth` tell a client whether it needs a
token and give it URL tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streamwarden.api.errors import ApiError, refuse_websocket
from streamwarden.api.schemas import AuthStatus, ErrorBody, UrlToken, UrlTokenRequest

if TYPE_CHECKING:
    from streamwarden.service import Service

UNAUTHORIZED_DETAIL = "a valid API token is required"
UNAUTHORIZED = json.dumps({"error": "unauthorized", "detail": UNAUTHORIZED_DETAIL}).encode()


def sign_url_token(secret: str, path: str, ttl_s: float, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    mac = hmac.new(secret.encode(), f"{path}|{expires}".encode(), hashlib.sha256).digest()
    return f"{expires}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def check_url_token(secret: str, path: str, token: str, now: float | None = None) -> bool:
    expires_text, _, mac_text = token.partition(".")
    expected = sign_url_token(secret, path, 0, now=int(expires_text) if expires_text.isdigit()
                              else 0).partition(".")[2]
    valid_mac = hmac.compare_digest(expected.encode(), mac_text.encode())
    not_expired = expires_text.isdigit() and int(expires_text) >= (time.time() if now is None
                                                                   else now)
    return valid_mac and not_expired


def check_bearer(secret: str, header: str | None) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                              secret.encode())


class TokenAuth:
    """ASGI middleware guarding HTTP and WebSocket routes."""

    def __init__(self, app: ASGIApp, token: str | None, public_paths: list[str]):
        self.app = app
        self.token = token
        self.public = set(public_paths)

    def _allowed(self, scope: Scope) -> bool:
        path = scope["path"]
        if not self.token or path in self.public or path in ("/", "/auth/status") or (
                path.startswith("/static/")):
            return True  # the dashboard shell holds no data; it asks for the token
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization")
        if check_bearer(self.token, auth.decode("latin-1") if auth else None):
            return True
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        url_token = (query.get("access_token") or [""])[0]
        return bool(url_token) and check_url_token(self.token, scope["path"], url_token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._allowed(scope):
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


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["auth"])
    api_config = service.config.api

    @router.get("/auth/status", response_model=AuthStatus)
    async def auth_status() -> AuthStatus:
        """Whether the API wants a token (open to all, so a UI can ask before it fails)."""
        return AuthStatus(token_required=bool(api_config.token))

    @router.post("/auth/url-token", response_model=UrlToken,
                 responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}})
    async def url_token(request: UrlTokenRequest) -> UrlToken:
        """A token for one path, for URLs that cannot carry a header (`<video>`, WebSocket)."""
        if not api_config.token:
            raise ApiError(422, "no_token_configured", "the API has no token; URLs need none")
        if not request.path.startswith("/") or ".." in request.path:
            raise ApiError(422, "invalid_path", "path must be an absolute API path")
        ttl = min(request.ttl or api_config.url_token_ttl, 24 * 3600)
        token = sign_url_token(api_config.token, request.path, ttl)
        return UrlToken(token=token, url=f"{request.path}?access_token={token}",
                        expires_in=ttl)

    return router
