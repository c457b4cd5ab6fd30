"""Motion JPEG from the shared decoder, for any codec and any client (`GET /streams/{id}/mjpeg`,
routed in live.py).

The fallback live view for what a browser cannot play through MSE (H.265) and for clients that
only understand MJPEG (`<img src>`, many VMS and home-automation tools). Each viewer holds a
claim on the stream's pixels (see `pixels/shared.py`): the first one starts the decoder, the
last one to leave stops it. Frames are JPEG-encoded per viewer on a worker thread at `fps`
(boxes drawn when inference is on); a viewer that reads slowly just gets fewer frames. When
the service shuts down the stream ends (the response completes), so nothing is left to cancel.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import StreamingResponse

from streamwarden.pixels.draw import render_jpeg

if TYPE_CHECKING:
    import numpy as np

    from streamwarden.ingest.stream import Stream
    from streamwarden.service import Service

BOUNDARY = "streamwarden-frame"
MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={BOUNDARY}"
_viewer_ids = itertools.count(1)


async def mjpeg_response(service: Service, request: Request, stream: Stream, fps: float,
                         width: int | None) -> StreamingResponse:
    """Claim the stream's pixels for a new viewer and stream its frames until it leaves."""
    manager = service.manager
    user = f"mjpeg-{next(_viewer_ids)}"
    consumer = await manager.loop.run(service.pixels.acquire, stream, user, fps)

    async def parts() -> AsyncIterator[bytes]:
        last_wall = None
        stop = asyncio.Event()  # set when the service shuts down: the stream ends
        try:
            with service.clients.open(stop.set):
                while not stop.is_set() and not await request.is_disconnected():
                    started = time.monotonic()
                    # the decoder moves when a sub-stream comes or goes: look it up each time
                    found = (service.pixels.consumer(stream) or consumer).frame()
                    if found is not None and found[2] != last_wall:
                        last_wall = found[2]
                        yield await part(found[1])
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), max(
                            0.0, 1.0 / fps - (time.monotonic() - started)))
        finally:
            manager.loop.submit(service.pixels.release, stream, user)

    async def part(frame: np.ndarray) -> bytes:
        boxes = (service.inference.events.latest(stream.id)
                 if stream.config.enable_inference else [])

        def render() -> bytes:  # in the main stream's geometry, as the boxes are
            return render_jpeg(service.inference.placed(stream, frame), boxes, width, 80)

        jpeg = await asyncio.to_thread(render)
        return (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(jpeg)}\r\n\r\n").encode() + jpeg + b"\r\n"

    return StreamingResponse(parts(), media_type=MEDIA_TYPE,
                             headers={"Cache-Control": "no-store"})
