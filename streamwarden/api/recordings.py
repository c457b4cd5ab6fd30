"""Recording control and the recordings archive: start/stop, list, download, clip export."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.background import BackgroundTask

from streamwarden.api.access import requires, stream_visible, visible_streams
from streamwarden.api.errors import ApiError
from streamwarden.api.files import ApiFileResponse
from streamwarden.api.params import (
    StreamIdPath,
    StreamIdQuery,
    checked_id,
    from_timestamp,
    to_timestamp,
    to_timestamp_or_none,
)
from streamwarden.api.schemas import (
    ERRORS,
    Recording,
    RecordingState,
    RecordRequestBody,
    Responses,
)
from streamwarden.db import RecordingRow
from streamwarden.recording.clip import ClipError, build_clip
from streamwarden.recording.layout import is_inside
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.recording.recorder import Recorder
    from streamwarden.service import Service

_MEDIA_TYPES = {".mp4": "video/mp4", ".mkv": "video/x-matroska", ".ts": "video/mp2t"}
_SEGMENT: Responses = {
    200: {"content": {"video/mp4": {}}, "description": "The segment (Range supported)"}, **ERRORS}
_CLIP: Responses = {
    200: {"content": {"video/mp4": {}}, "description": "One MP4 of the range"}, **ERRORS}
_UTC_IF_NO_ZONE = "ISO 8601; UTC if no zone"
MAX_CLIP_S = 24 * 3600


def _recording(row: RecordingRow) -> Recording:
    return Recording(id=row.id, stream_id=row.stream_id, start=from_timestamp(row.start_ts),
                     end=from_timestamp(row.end_ts), duration=row.duration, bytes=row.bytes,
                     reason=row.reason, status=row.status, url=f"/recordings/{row.id}/file")


def _state(stream_id: str, recorder: Recorder | None) -> RecordingState:
    stats: dict[str, Any] = recorder.stats() if recorder is not None else {}
    return RecordingState(id=stream_id, recording=bool(stats.get("recording")),
                          reason=stats.get("reason"), recording_error=stats.get("recording_error"))


def _list_range(start: datetime | None,
                end: datetime | None) -> tuple[float | None, float | None]:
    start_ts, end_ts = to_timestamp_or_none(start), to_timestamp_or_none(end)
    if start_ts is not None and end_ts is not None and end_ts < start_ts:
        raise ApiError(422, "invalid_range", "end is before start")
    return start_ts, end_ts


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["recording"])
    db = service.db

    @router.post("/streams/{stream_id}/record", response_model=RecordingState, responses=ERRORS,
                 dependencies=[requires(Action.RECORD)])
    async def start_recording(stream_id: StreamIdPath,
                              body: RecordRequestBody | None = None) -> RecordingState:
        """Start recording (idempotent). Pre-roll comes from the pre-event buffer; with
        `duration` or `post_roll` the recording stops by itself."""
        body = body or RecordRequestBody()
        recorder = await service.recording.start(checked_id(stream_id), body.reason, body.pre_roll,
                                              body.duration, body.post_roll)
        return _state(stream_id, recorder)

    @router.delete("/streams/{stream_id}/record", response_model=RecordingState,
                   responses=ERRORS, dependencies=[requires(Action.RECORD)])
    async def stop_recording(stream_id: StreamIdPath) -> RecordingState:
        """Stop recording at once; the open file is finalised. Idempotent."""
        return _state(stream_id, await service.recording.stop(checked_id(stream_id)))

    @router.get("/recordings", response_model=list[Recording], responses=ERRORS,
                dependencies=[requires(Action.RECORDINGS)])
    async def list_recordings(
        stream_id: StreamIdQuery = None,
        start: Annotated[datetime | None, Query(description=_UTC_IF_NO_ZONE)] = None,
        end: Annotated[datetime | None, Query(description=_UTC_IF_NO_ZONE)] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> list[Recording]:
        if stream_id is not None:
            checked_id(stream_id)
        start_ts, end_ts = _list_range(start, end)
        rows = await db.run(db.recordings, stream_id, start_ts, end_ts, limit, None,
                            visible_streams())
        return [_recording(row) for row in rows]

    @router.get("/recordings/{rec_id}/file", responses=_SEGMENT,
                dependencies=[requires(Action.RECORDINGS)])
    async def download(rec_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> ApiFileResponse:
        row = await db.run(db.recording, rec_id)
        if row is not None and not stream_visible(row.stream_id):
            row = None  # another user's stream: as if there were no such recording
        return _segment_file(rec_id, row, service.recording.path)

    @router.get("/streams/{stream_id}/clip", responses=_CLIP,
                dependencies=[requires(Action.RECORDINGS)])
    async def clip(stream_id: StreamIdPath, start: datetime, end: datetime) -> ApiFileResponse:
        """One MP4 of [start, end], cut at keyframes, remuxed from the segments (no re-encode)."""
        checked_id(stream_id)
        start_ts, end_ts = _clip_range(start, end)
        rows = await db.run(db.recordings, stream_id, start_ts, end_ts, 10000)
        rows = _playable(rows, service.recording.path)
        if not rows:
            raise ApiError(404, "no_recording",
                           f"stream {stream_id!r} has no recording between {start.isoformat()} "
                           f"and {end.isoformat()}")
        name = f"{stream_id}-{start.strftime('%Y%m%dT%H%M%S')}.mp4"
        return await _clip_file(rows, start_ts, end_ts, stream_id, name)

    return router


def _segment_file(rec_id: int, row: RecordingRow | None,
                  recording_path: FsPath) -> ApiFileResponse:
    """The segment's file, if it is under the recordings directory and holds data."""
    if row is None:
        raise ApiError(404, "not_found", f"no recording with id {rec_id}")
    path = FsPath(row.path)
    inside = is_inside(recording_path, path)
    try:
        size = path.stat().st_size if inside and path.is_file() else None
    except OSError:
        size = None
    if size is None:
        raise ApiError(404, "not_found", f"the file of recording {rec_id} is gone")
    if size == 0:  # just opened, nothing written yet: never a 200 with an empty body
        raise ApiError(404, "no_data", f"recording {rec_id} has no data on disk yet")
    return ApiFileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix, "video/mp4"),
                           filename=f"{row.stream_id}-{path.name}")


def _playable(rows: list[RecordingRow], recording_path: FsPath) -> list[RecordingRow]:
    """The segments a clip can be cut from: not corrupt, and a file under the recordings."""
    return [r for r in rows if r.status != "corrupt" and FsPath(r.path).is_file()
            and is_inside(recording_path, FsPath(r.path))]


def _clip_range(start: datetime, end: datetime) -> tuple[float, float]:
    start_ts, end_ts = to_timestamp(start), to_timestamp(end)
    if end_ts <= start_ts:
        raise ApiError(422, "invalid_range", "end must be after start")
    if end_ts - start_ts > MAX_CLIP_S:
        raise ApiError(422, "invalid_range", "a clip can be at most 24 hours long")
    return start_ts, end_ts


async def _clip_file(rows: list[RecordingRow], start_ts: float, end_ts: float, stream_id: str,
                     name: str) -> ApiFileResponse:
    """Build the clip in a directory of its own, removed once the response is sent."""
    workdir = FsPath(tempfile.mkdtemp(prefix="streamwarden-clip-"))
    out = workdir / f"{stream_id}.mp4"
    try:
        await asyncio.to_thread(build_clip, rows, start_ts, end_ts, out)
    except ClipError as exc:
        _remove_dir(workdir)
        raise ApiError(500, "clip_failed", str(exc)) from None
    return ApiFileResponse(out, media_type="video/mp4", filename=name,
                           background=BackgroundTask(_remove_dir, workdir))


def _remove_dir(path: FsPath) -> None:
    for child in path.iterdir():
        child.unlink(missing_ok=True)
    path.rmdir()
