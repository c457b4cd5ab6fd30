"""What a camera shows now, three ways, for any client (routes tagged `streams`):

- `GET /streams/{id}/snapshot.jpg`: the newest picture (see `snapshot_jpeg`);
- `GET /streams/{id}/mjpeg`: Motion JPEG for any codec (see mjpeg.py);
- `WS /streams/{id}/live.mp4`: live video for browsers as fragmented MP4 over a WebSocket.

What a client of the WebSocket live view gets, in order:
- text `{"type": "init", "codec": "avc1.64001f", "mime": "video/mp4; codecs=\\"…\\"",
  "width", "height"}` followed by one binary message: the init segment (ftyp + moov);
- binary messages, one moof + mdat per frame, the first one a keyframe.
A new `init` pair may come at any time (the camera's parameters changed); fragments then
restart at a keyframe. H.265 comes as `hvc1.…`/`hev1.…`: whether the browser can play it is
for the client to ask (`MediaSource.isTypeSupported`). The browser appends them to a Media
Source Extensions SourceBuffer.

Errors are a text `{"type": "error", "error", "detail"}` and a close: `not_found` (4404),
`invalid_id` (4422), `unsupported_codec` (4415: a codec other than H.264/H.265, or H.265 as
a byte-stream without codec_data: use MJPEG or snapshots), `dropped` (1008: this
client fell too far behind), `stream_removed` (1001), `shutting_down` (1001: the service is
stopping). Video only; audio is not sent.
Authentication as for every route (bearer header or a signed `?access_token=`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse

from streamwarden.api.access import requires, stream_visible
from streamwarden.api.clients import GOING_AWAY, GOING_AWAY_REASON, OpenClients
from streamwarden.api.errors import ApiError
from streamwarden.api.mjpeg import MEDIA_TYPE, mjpeg_response
from streamwarden.api.params import StreamIdPath, running_stream
from streamwarden.api.schemas import ERRORS, STREAM_ERRORS
from streamwarden.ids import is_valid_stream_id
from streamwarden.live.mux import InitSegment
from streamwarden.live.viewers import LiveViewers, UnsupportedCodecError, Viewer
from streamwarden.manager import StreamNotFoundError
from streamwarden.pixels.draw import render_jpeg
from streamwarden.pixels.snapshot import SnapshotCache, SnapshotError
from streamwarden.recording.recorder import Recorder
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.ingest.stream import Stream
    from streamwarden.service import Service

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


_JPEG: dict[str, Any] = {"content": {"image/jpeg": {}}, "description": "JPEG"}
_NO_STORE = {"Cache-Control": "no-store"}


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["streams"])
    manager = service.manager
    snapshots = SnapshotCache()

    @router.get("/streams/{stream_id}/snapshot.jpg", response_class=Response,
                responses={200: _JPEG, **STREAM_ERRORS}, dependencies=[requires(Action.VIEW)])
    async def snapshot(stream_id: StreamIdPath,
                       width: Annotated[int | None, Query(ge=32, le=3840)] = None) -> Response:
        """The newest picture as JPEG: with inference on, the newest decoded frame with the
        latest detections drawn; otherwise the newest keyframe, decoded once per burst."""
        stream = running_stream(manager, stream_id)
        jpeg = await snapshot_jpeg(service, snapshots, stream, width)
        return Response(jpeg, media_type="image/jpeg", headers=_NO_STORE)

    @router.get("/streams/{stream_id}/mjpeg", response_class=StreamingResponse,
                responses={200: {"content": {MEDIA_TYPE: {}}}, **ERRORS},
                dependencies=[requires(Action.VIEW)])
    async def mjpeg(request: Request, stream_id: StreamIdPath,
                    fps: Annotated[float, Query(gt=0, le=15)] = 5.0,
                    width: Annotated[int | None, Query(ge=32, le=3840)] = None
                    ) -> StreamingResponse:
        """Motion JPEG (multipart/x-mixed-replace) of the stream, decoded once for all users."""
        stream = running_stream(manager, stream_id)
        return await mjpeg_response(service, request, stream, fps, width)

    @router.websocket("/streams/{stream_id}/live.mp4", dependencies=[requires(Action.VIEW)])
    async def live(socket: WebSocket, stream_id: str) -> None:
        await serve_viewer(socket, stream_id, service.live, service.clients)

    return router


async def snapshot_jpeg(service: Service, snapshots: SnapshotCache, stream: Stream,
                        width: int | None) -> bytes:
    """With the shared decoder running (inference), its newest frame with the boxes drawn;
    otherwise the recorder's newest keyframe, decoded by the cache. A 404 if neither exists."""
    newest = service.inference.latest_frame(stream.id)
    if newest is not None:
        return await asyncio.to_thread(render_jpeg, *newest, width)
    recorder = stream.consumer(Recorder)
    keyframe = recorder.latest_keyframe() if recorder is not None else None
    try:
        return await asyncio.to_thread(snapshots.get, stream.id, keyframe, width)
    except SnapshotError as exc:
        raise ApiError(404, "no_picture", f"no picture of {stream.id!r} yet: {exc}") from None


async def serve_viewer(socket: WebSocket, stream_id: str, hub: LiveViewers,
                       clients: OpenClients) -> None:
    """One browser's live view, from the handshake until it leaves or is dropped."""
    await socket.accept()
    if not is_valid_stream_id(stream_id):
        await _refuse(socket, 4422, "invalid_id", "not a valid stream id")
        return
    try:
        if not stream_visible(stream_id):  # another user's stream: as if it did not exist
            raise StreamNotFoundError(stream_id)
        viewer = await hub.join(stream_id)
    except StreamNotFoundError:
        await _refuse(socket, 4404, "not_found", f"no stream with id {stream_id!r}")
        return
    except UnsupportedCodecError as exc:
        await _refuse(socket, 4415, "unsupported_codec",
                      f"{stream_id!r} is {exc}; the live view carries H.264 and H.265 only: "
                      "use MJPEG or snapshots")
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
