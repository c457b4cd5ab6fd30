"""Files served by the API (segments, clips, the dashboard) with Range errors in the API's shape.

Starlette's FileResponse answers a Range header it cannot honour by itself, below the exception
handlers: a plain-text 400 for a malformed header, an empty 416 for a range past the end of the
file, and it skips the response's background task when it does (a clip's temporary directory
would stay behind). `ApiFileResponse` catches those two answers on their way out and sends
`{"error", "detail"}` instead, keeping 416's `Content-Range: bytes */SIZE`; `ApiStaticFiles`
does the same for the dashboard's static files. Everything else passes through untouched.
"""

from __future__ import annotations

from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

_RANGE_REFUSALS = (400, 416)  # FileResponse sends these only when it refuses a Range header


def range_error(status: int, range_header: str, content_range: bytes | None) -> JSONResponse:
    """The API's answer to a Range header that FileResponse refused with `status`."""
    if status == 416:
        size = content_range.decode("latin-1").rpartition("/")[2] if content_range else "?"
        return JSONResponse(
            {"error": "range_not_satisfiable",
             "detail": f"the range {range_header!r} starts beyond the end of the file "
                       f"({size} bytes)"},
            status_code=416, headers={"Content-Range": f"bytes */{size}"})
    return JSONResponse(
        {"error": "invalid_range",
         "detail": f"the Range header {range_header!r} is malformed: use bytes=START-END, "
                   "bytes=START- or bytes=-SUFFIX"},
        status_code=400)


class _RangeRefusals:
    """Wraps `send`: holds back a refusal's start and body, and sends the JSON error instead."""

    def __init__(self, scope: Scope, receive: Receive, send: Send):
        self.scope, self.receive, self.send = scope, receive, send
        self.refusal: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] in _RANGE_REFUSALS:
            self.refusal = message
            return
        if self.refusal is None:
            await self.send(message)
            return
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            headers = dict(self.refusal.get("headers") or [])
            response = range_error(self.refusal["status"],
                                   Headers(scope=self.scope).get("range", ""),
                                   headers.get(b"content-range"))
            await response(self.scope, self.receive, self.send)


class ApiFileResponse(FileResponse):
    """A FileResponse whose Range refusals are API errors, and whose background task always
    runs (FileResponse returns early on a refusal and would skip it)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        refusals = _RangeRefusals(scope, receive, send)
        await super().__call__(scope, receive, refusals)
        if refusals.refusal is not None and self.background is not None:
            await self.background()


class ApiStaticFiles(StaticFiles):
    """StaticFiles whose Range refusals are API errors (its 404/405 already are: they are
    HTTPExceptions, which the app's handlers turn into the API's shape)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        await super().__call__(scope, receive, _RangeRefusals(scope, receive, send))
