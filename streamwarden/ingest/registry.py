"""The running streams by id: written by the manager, read by everyone else.

The manager adds and removes streams here, only ever on the GStreamer thread (so adding one
camera never races with another's restart). Features and the API only look streams up, from
any thread: a lookup is one dict read, atomic under the GIL. Features that must find a stream
by id later (the restream server when a reader connects, inference when the model asks for
an event recording, live viewers) hold this registry, not the manager, so no feature can
reach back into the manager that calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamwarden.ingest.stream import Stream


class StreamExistsError(Exception):
    pass


class StreamNotFoundError(Exception):
    pass


class StreamRegistry:
    def __init__(self) -> None:
        self._streams: dict[str, Stream] = {}

    # ---- reads (any thread) ----------------------------------------------------------------

    def get(self, stream_id: str) -> Stream:
        """The running stream with this id; `StreamNotFoundError` if there is none."""
        stream = self._streams.get(stream_id)
        if stream is None:
            raise StreamNotFoundError(stream_id)
        return stream

    def find(self, stream_id: str) -> Stream | None:
        return self._streams.get(stream_id)

    def all(self) -> list[Stream]:
        return list(self._streams.values())

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    # ---- changes (the manager, GStreamer thread) -------------------------------------------

    def add(self, stream: Stream) -> None:
        if stream.id in self._streams:
            raise StreamExistsError(stream.id)
        self._streams[stream.id] = stream

    def pop(self, stream_id: str) -> Stream:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            raise StreamNotFoundError(stream_id)
        return stream

    def clear(self) -> list[Stream]:
        """Remove every stream (shutdown) and return them."""
        streams = list(self._streams.values())
        self._streams.clear()
        return streams
