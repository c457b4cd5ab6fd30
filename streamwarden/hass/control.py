"""The service's own controls, as the Home Assistant bridge sees them: the same calls the API
makes for `POST/DELETE /streams/{id}/record` and `PATCH /streams/{id}` (`enable_inference`),
and the same picture as `GET /streams/{id}/snapshot.jpg`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamwarden.api.errors import ApiError
from streamwarden.api.live import snapshot_jpeg
from streamwarden.hass.bridge import CameraStatus
from streamwarden.ingest.registry import StreamNotFoundError
from streamwarden.ingest.supervisor import StreamState
from streamwarden.pixels.snapshot import SnapshotCache
from streamwarden.recording.recorder import Recorder

if TYPE_CHECKING:
    from streamwarden.service import Service

SNAPSHOT_WIDTH = 640  # Home Assistant shows a card, not the full picture


class ServiceControl:
    def __init__(self, service: Service):
        self._service = service
        self._snapshots = SnapshotCache()

    def stream_ids(self) -> list[str]:
        return [stream.id for stream in self._service.manager.all()]

    def status(self, stream_id: str) -> CameraStatus | None:
        try:
            stream = self._service.manager.get(stream_id)
        except StreamNotFoundError:
            return None
        recorder = stream.consumer(Recorder)
        return CameraStatus(online=stream.supervisor.state is StreamState.STREAMING,
                            recording=recorder is not None and recorder.recording,
                            detecting=stream.config.enable_inference)

    async def set_recording(self, stream_id: str, on: bool) -> None:
        if on:
            await self._service.recording.start(stream_id, reason="home_assistant")
        else:
            await self._service.recording.stop(stream_id)

    async def set_detection(self, stream_id: str, on: bool) -> None:
        stream = await self._service.manager.update(stream_id, {"enable_inference": on})
        if stream.origin == "api":  # as PATCH does: an API stream keeps its settings
            await self._service.db.run(self._service.stored.save, stream_id,
                                       stream.config.model_dump_json())

    async def snapshot(self, stream_id: str) -> bytes | None:
        try:
            stream = self._service.manager.get(stream_id)
            return await snapshot_jpeg(self._service, self._snapshots, stream, SNAPSHOT_WIDTH)
        except (StreamNotFoundError, ApiError):  # gone, or no picture yet
            return None
