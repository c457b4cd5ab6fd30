"""The REST control API: streams in and out while the service runs, health for monitoring.

Handlers run on the asyncio thread; they read producer snapshots directly and ask the
GStreamer thread (through the manager) for every change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from streamwarden.api import live, ws
from streamwarden.api.auth import BodyLimit, TokenAuth, sign_url_token
from streamwarden.api.errors import (
    ApiError,
    AssumeJsonBody,
    describe_errors,
    install_error_handlers,
)
from streamwarden.api.events import create_router as create_events_router
from streamwarden.api.files import ApiFileResponse, ApiStaticFiles
from streamwarden.api.metrics import CONTENT_TYPE, make_registry, render
from streamwarden.api.mjpeg import create_router as create_mjpeg_router
from streamwarden.api.params import (
    StreamIdPath,
    checked_id,
    install_stream_errors,
    running_stream,
)
from streamwarden.api.recordings import create_router
from streamwarden.api.schemas import (
    AuthStatus,
    ErrorBody,
    HealthEntry,
    StreamCreated,
    StreamPatch,
    StreamView,
    UrlToken,
    UrlTokenRequest,
)
from streamwarden.config.model import StreamConfig
from streamwarden.file_sources import file_source_problem
from streamwarden.ids import redact_uri
from streamwarden.inference.detectors.base import ModelError
from streamwarden.ingest.producer import Producer
from streamwarden.manager import StreamExistsError
from streamwarden.pixels.draw import render_jpeg
from streamwarden.pixels.snapshot import SnapshotCache, SnapshotError
from streamwarden.recording.recorder import Recorder

WEB_ROOT = Path(__file__).resolve().parent.parent / "web" / "static"

if TYPE_CHECKING:
    from streamwarden.service import Service

_ERRORS = {
    404: {"model": ErrorBody, "description": "No such stream (or, for a snapshot, no picture)"},
    422: {"model": ErrorBody, "description": "Malformed request, id or URI"},
}
_FILE_REFUSED = {403: {"model": ErrorBody, "description": "A file:// source outside "
                                                          "[api] allowed_file_dirs"}}


def _check_file_source(uri: str, allowed_dirs: list[str]) -> None:
    """API clients may only name files under the configured directories (see file_sources)."""
    if problem := file_source_problem(uri, allowed_dirs):
        raise ApiError(403, "file_source_not_allowed", problem)


def _view(producer: Producer) -> StreamView:
    cfg = producer.config
    health = HealthEntry(**producer.health())
    return StreamView(
        id=cfg.id,
        source=producer.source,
        uri=redact_uri(cfg.uri),
        enable_inference=cfg.enable_inference,
        enable_recording=cfg.enable_recording,
        recording=health.recording,
        settings=producer.settings,
        health=health,
        statistics=producer.statistics(),
    )


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.startup()
        try:
            yield
        finally:
            await service.shutdown()

    app = FastAPI(
        title="streamwarden",
        summary="Camera ingest, recording, inference and restream in one service",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_stream_errors(app)
    api_config = service.config.api
    app.add_middleware(AssumeJsonBody)
    app.add_middleware(BodyLimit, max_bytes=api_config.max_body_bytes)
    app.add_middleware(TokenAuth, token=api_config.token, public_paths=api_config.public_paths)
    app.include_router(create_router(service))
    app.include_router(create_events_router(service))
    app.include_router(create_mjpeg_router(service))
    manager = service.manager

    @app.get("/health", response_model=list[HealthEntry], tags=["monitoring"])
    async def health() -> list[HealthEntry]:
        """One entry per stream: state, retries, last frame age, fps, bitrate."""
        return [HealthEntry(**p.health()) for p in manager.all()]

    @app.get("/streams", response_model=list[StreamView], tags=["streams"])
    async def list_streams() -> list[StreamView]:
        return [_view(p) for p in manager.all()]

    @app.post(
        "/streams",
        status_code=201,
        response_model=StreamCreated,
        tags=["streams"],
        responses={409: {"model": ErrorBody, "description": "Duplicate id"}, **_ERRORS,
                   **_FILE_REFUSED},
    )
    async def add_stream(stream: StreamConfig) -> StreamCreated:
        """Start ingesting a camera; the others are not touched."""
        try:
            stream.settings(service.config.stream_defaults)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", describe_errors(exc.errors())[1]) from None
        _check_file_source(stream.uri, api_config.allowed_file_dirs)
        try:
            await manager.add(stream, source="api")
        except StreamExistsError:
            raise ApiError(409, "duplicate_id", f"a stream with id {stream.id!r} exists") from None
        except ModelError as exc:
            raise ApiError(422, "inference_unavailable", str(exc)) from None
        await service.db.run(service.stored.save, stream.id, stream.model_dump_json())
        return StreamCreated(id=stream.id)

    @app.patch("/streams/{stream_id}", response_model=StreamView, tags=["streams"],
               responses={**_ERRORS, **_FILE_REFUSED})
    async def patch_stream(patch: StreamPatch,
                           stream_id: StreamIdPath) -> StreamView:
        """Change a running stream. Recording toggles in place; a new URI or timeouts restart
        its source. Changes to streams from the config file last until the next restart."""
        changes = patch.model_dump(exclude_unset=True)
        current = running_stream(manager, stream_id).config.uri
        if changes.get("uri") and changes["uri"] != current:  # a path the client chose
            _check_file_source(changes["uri"], api_config.allowed_file_dirs)
        try:
            producer = await manager.update(stream_id, changes)
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", describe_errors(exc.errors())[1]) from None
        except ModelError as exc:
            raise ApiError(422, "inference_unavailable", str(exc)) from None
        if producer.source == "api":
            await service.db.run(service.stored.save, stream_id,
                                 producer.config.model_dump_json())
        return _view(producer)

    @app.get("/streams/{stream_id}", response_model=StreamView, tags=["streams"],
             responses=_ERRORS)
    async def get_stream(stream_id: StreamIdPath) -> StreamView:
        return _view(running_stream(manager, stream_id))

    @app.delete("/streams/{stream_id}", status_code=204, tags=["streams"], responses=_ERRORS)
    async def delete_stream(stream_id: StreamIdPath) -> Response:
        """Stop a stream and release everything it held."""
        await manager.remove(checked_id(stream_id))
        await service.db.run(service.stored.delete, stream_id)
        return Response(status_code=204)

    snapshots = SnapshotCache()

    @app.get("/streams/{stream_id}/snapshot.jpg", tags=["streams"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}, "description": "JPEG"},
                        **_ERRORS})
    async def snapshot(stream_id: StreamIdPath,
                       width: Annotated[int | None, Query(ge=32, le=3840)] = None) -> Response:
        """The newest picture as JPEG: with inference on, the newest decoded frame with the
        latest detections drawn; otherwise the newest keyframe, decoded once per burst."""
        producer = running_stream(manager, stream_id)
        newest = service.inference.latest_frame(producer.id)
        if newest is not None:  # the shared decoder runs: newest frame, boxes drawn
            return Response(await asyncio.to_thread(render_jpeg, *newest, width),
                            media_type="image/jpeg", headers={"Cache-Control": "no-store"})
        recorder = producer.consumer("recorder")
        keyframe = recorder.latest_keyframe() if isinstance(recorder, Recorder) else None
        try:
            jpeg = await asyncio.to_thread(snapshots.get, stream_id, keyframe, width)
        except SnapshotError as exc:
            raise ApiError(404, "no_picture", f"no picture of {stream_id!r} yet: {exc}") from None
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    app.mount("/static", ApiStaticFiles(directory=WEB_ROOT), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> ApiFileResponse:
        """The web dashboard (a static page; its data comes from the API with the token)."""
        return ApiFileResponse(WEB_ROOT / "index.html")

    registry = make_registry(service)
    ws.install(app, service)
    live.install(app, service.live, service.clients)

    @app.get("/metrics", tags=["monitoring"], response_class=PlainTextResponse,
             responses={200: {"content": {CONTENT_TYPE: {}},
                              "description": "Prometheus text format"}})
    async def metrics() -> PlainTextResponse:
        """Per-stream frames, bytes, fps, bitrate, retries, state, recording; process CPU/RSS."""
        body = await asyncio.to_thread(render, registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE)

    @app.get("/auth/status", response_model=AuthStatus, tags=["auth"])
    async def auth_status() -> AuthStatus:
        """Whether the API wants a token (open to all, so a UI can ask before it fails)."""
        return AuthStatus(token_required=bool(api_config.token))

    @app.post("/auth/url-token", response_model=UrlToken, tags=["auth"],
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

    return app
