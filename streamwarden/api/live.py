"""`WS /streams/{id}/live.mp4`: live video for browsers as fragmented MP4 over a WebSocket.

What a client gets, in order:
- text `{"type": "init", "codec": "avc1.64001f", "mime": "video/mp4; codecs=\\"…\\"",
  "width", "height"}` followed by one binary message: the init segment (ftyp + moov);
- binary messages, one moof + mdat per frame, the first one a keyframe.
A new `init` pair may come at any time (the camera's parameters changed); fragments then
restart at a keyframe. The browser appends them to a Media Source Extensions SourceBuffer.

Errors are a text `{"type": "error", "error", "detail"}` and a close: `not_found` (4404),
`invalid_id` (4422), `unsupported_codec` (4415, H.265: use snapshots), `dropped` (1008: this
client fell too far behind), `stream_removed` (1001), `shutting_down` (1001: the service is
stopping). Video only; audio is not sent.
Authentication as for every route (bearer header or a signed `?access_token=`).
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import WebSocket, WebSocketDisconnect

from streamwarden.api.clients import GOING_AWAY, GOING_AWAY_REASON, OpenClients
from streamwarden.ids import is_valid_stream_id
from streamwarden.live.mux import InitSegment
from streamwarden.live.viewers import LiveViewers, UnsupportedCodecError, Viewer
from streamwarden.manager import StreamNotFoundError

SEND_TIMEOUT_S = 5.0
CHECK_INTERVAL_S = 2.0
_DROPPED = {"dropped": (1008, "this viewer fell too far behind"),
            "stream_removed": (1001, "the stream went away"),
            "shutting_down": (GOING_AWAY, GOING_AWAY_REASON),
            "unsupported_codec": (4415, "the camera sends a codec browsers cannot play: "
                                        "use snapshots")}


async def _refuse(socket: WebSocket, code: int, error: str, detail: str) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await socket.send_json({"type": "error", "error": error, "detail": detail})
        await socket.close(code=code, reason=detail.encode()[:123].decode(errors="ignore"))


async def _send(socket: WebSocket, item: InitSegment | bytes) -> None:
    if isinstance(item, InitSegment):
        await socket.send_json({"type": "init", "codec": item.codec, "mime": item.mime,
                                "width": item.width, "height": item.height})
        item = item.data
    await asyncio.wait_for(socket.send_bytes(item), timeout=SEND_TIMEOUT_S)


def install(app, hub: LiveViewers, clients: OpenClients) -> None:
    @app.websocket("/streams/{stream_id}/live.mp4")
    async def live(socket: WebSocket, stream_id: str) -> None:
        await socket.accept()
        if not is_valid_stream_id(stream_id):
            await _refuse(socket, 4422, "invalid_id", "not a valid stream id")
            return
        try:
            viewer = await hub.join(stream_id)
        except StreamNotFoundError:
            await _refuse(socket, 4404, "not_found", f"no stream with id {stream_id!r}")
            return
        except UnsupportedCodecError as exc:
            await _refuse(socket, 4415, "unsupported_codec",
                          f"{stream_id!r} is {exc}; browsers play H.264 only: use snapshots")
            return

        closed = asyncio.Event()

        async def reader() -> None:  # notices the client leaving while no frames flow
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                while (await socket.receive())["type"] != "websocket.disconnect":
                    pass
            closed.set()

        reading = asyncio.create_task(reader())
        try:
            with clients.open(lambda: viewer.drop("shutting_down")):
                await _stream(socket, hub, stream_id, viewer, closed)
        except (WebSocketDisconnect, RuntimeError, TimeoutError, OSError):
            pass
        finally:
            reading.cancel()
            await hub.leave(stream_id, viewer)


async def _stream(socket: WebSocket, hub: LiveViewers, stream_id: str, viewer: Viewer,
                  closed: asyncio.Event) -> None:
    """Send the viewer's queue until the client leaves or the viewer is dropped."""
    while not closed.is_set():
        try:
            item = await asyncio.wait_for(viewer.queue.get(), CHECK_INTERVAL_S)
        except TimeoutError:
            await hub.check(stream_id)  # a removed stream or a failed mux drops us
            continue
        if item is None:
            code, detail = _DROPPED[viewer.reason]
            await _refuse(socket, code, viewer.reason, detail)
            return
        await _send(socket, item)
