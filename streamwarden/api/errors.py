"""One error shape for the whole API: `{"error": code, "detail": message}`, never a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("streamwarden.api")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large",
          415: "unsupported_media_type", 416: "range_not_satisfiable", 422: "invalid_request"}


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: str,
                 headers: Mapping[str, str] | None = None):
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


def error_response(status: int, error: str, detail: str,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    parts = []
    code = "invalid_request"
    for err in errors:
        if err.get("type") == "json_invalid":
            return "invalid_json", f"the request body is not valid JSON: {err.get('msg')}"
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        msg = str(err.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "required field is missing"
        parts.append(f"{where}: {msg}")
    return code, "; ".join(parts) or "invalid request"


async def refuse_websocket(scope: Scope, send: Send, status: int, error: str, detail: str,
                           headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Refuse a WebSocket handshake with an HTTP answer in the API's shape.

    Closing before `accept` would make the server answer a bare 403 whatever the reason;
    where the server offers the ASGI denial-response extension (uvicorn does), the client gets
    the real status and `{"error", "detail"}`. Elsewhere: a close with code 4000 + status.
    """
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 4000 + status})
        return
    body = json.dumps({"error": error, "detail": detail}).encode()
    await send({"type": "websocket.http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "websocket.http.response.body", "body": body})


def _websocket_aware(not_found: ASGIApp) -> ASGIApp:
    """The router's fallback, with unknown WebSocket paths refused as 404 in the API's shape
    (Starlette closes them, which reads as a bare 403)."""

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await refuse_websocket(scope, send, 404, "not_found",
                                   f"no WebSocket endpoint at {scope.get('path', '')!r}")
            return
        await not_found(scope, receive, send)

    return fallback


def install_error_handlers(app: FastAPI) -> None:
    app.router.default = _websocket_aware(app.router.default)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        code, detail = describe_errors(list(exc.errors()))
        return error_response(422, code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":  # the router's own words
            detail = f"no such path: {request.url.path}"
        elif exc.status_code == 405 and detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, _CODES.get(exc.status_code, "error"), detail,
                              headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error in the API: %r", exc, exc_info=exc)
        return error_response(500, "internal", "internal error; the service log has the details")


class AssumeJsonBody:
    """ASGI middleware: treat a request body sent without a JSON content type as JSON.

    `curl -d '{...}'` sends `application/x-www-form-urlencoded`; rejecting that with "input
    should be a valid dictionary" confuses operators, so every body is parsed as JSON and a
    body that is not JSON gets the plain "not valid JSON" error.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in ("POST", "PUT", "PATCH"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            original = dict(scope["headers"]).get(b"content-type", b"")
            if not original.startswith(b"application/json"):
                headers.append((b"content-type", b"application/json"))
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
