"""`/streams`: the cameras the service ingests, added, changed and removed while it runs.

Handlers run on the asyncio thread; they read the streams' snapshots directly and ask the
GStreamer thread (through the manager) for every change. API-added streams are stored in the
database (encrypted, see stream_store.py) so they survive a restart.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from pydantic import ValidationError

from streamwarden.api.access import FORBIDDEN_DETAIL, current, requires, requires_any
from streamwarden.api.errors import ApiError, describe_errors
from streamwarden.api.params import StreamIdPath, checked_id, running_stream
from streamwarden.api.schemas import (
    STREAM_ERRORS,
    ErrorBody,
    HealthEntry,
    Responses,
    StreamCreated,
    StreamPatch,
    StreamView,
)
from streamwarden.api.views import stream_health, stream_statistics
from streamwarden.config.model import Config, StreamConfig
from streamwarden.file_sources import file_source_problem
from streamwarden.inference.detectors.base import ModelError
from streamwarden.manager import StreamExistsError
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.feature import Feature
    from streamwarden.ingest.stream import Stream
    from streamwarden.service import Service

FILE_REFUSED: Responses = {403: {"model": ErrorBody, "description": "A file:// source outside "
                                                          "[api] allowed_file_dirs"}}
DUPLICATE: Responses = {409: {"model": ErrorBody, "description": "Duplicate id"}}


def check_file_source(uri: str, allowed_dirs: list[str]) -> None:
    """API clients may only name files under the configured directories (see file_sources)."""
    if problem := file_source_problem(uri, allowed_dirs):
        raise ApiError(403, "file_source_not_allowed", problem)


def _check_changed_sources(changes: dict, running: StreamConfig, allowed_dirs: list[str]
                           ) -> None:
    """A PATCH's new `uri`/`detect_uri` is a path the client chose: checked like a POST's."""
    for key in ("uri", "detect_uri"):
        if changes.get(key) and changes[key] != getattr(running, key):
            check_file_source(changes[key], allowed_dirs)


def check_new_stream(stream: StreamConfig, config: Config) -> None:
    """Refuse, before anything starts, settings that do not combine with the defaults and a
    file the API may not read."""
    try:
        stream.settings(config.stream_defaults)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_errors(exc.errors())[1]) from None
    check_file_source(stream.uri, config.api.allowed_file_dirs)
    if stream.detect_uri is not None:
        check_file_source(stream.detect_uri, config.api.allowed_file_dirs)


def stream_view(stream: Stream, features: Sequence[Feature]) -> StreamView:
    cfg = stream.config
    health = HealthEntry(**stream_health(stream, features))
    return StreamView(
        id=cfg.id,
        source=stream.origin,
        uri=stream.display_uri.text,
        detect_uri=stream.detect.display_uri.text if stream.detect is not None else None,
        detect_fit=cfg.detect_fit,
        enable_inference=cfg.enable_inference,
        enable_recording=cfg.enable_recording,
        recording=health.recording,
        record_on=cfg.record_on,
        settings=stream.settings,
        health=health,
        statistics=stream_statistics(stream),
    )


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """What a change to a stream can be refused for, as the API's 422s."""
    try:
        yield
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_errors(exc.errors())[1]) from None
    except ModelError as exc:
        raise ApiError(422, "inference_unavailable", str(exc)) from None


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["streams"])
    manager = service.manager

    @router.get("/streams", response_model=list[StreamView],
                dependencies=[requires(Action.VIEW)])
    async def list_streams() -> list[StreamView]:
        principal = current()
        return [stream_view(p, manager.features) for p in manager.all()
                if principal.sees(p.id)]

    @router.post("/streams", status_code=201, response_model=StreamCreated,
                 responses={**DUPLICATE, **STREAM_ERRORS, **FILE_REFUSED},
                 dependencies=[requires(Action.CONFIGURE)])
    async def add_stream(stream: StreamConfig) -> StreamCreated:
        """Start ingesting a camera; the others are not touched."""
        check_new_stream(stream, service.config)
        try:
            with _refusals():
                await manager.add(stream, origin="api")
        except StreamExistsError:
            raise ApiError(409, "duplicate_id", f"a stream with id {stream.id!r} exists") from None
        await service.db.run(service.stored.save, stream.id, stream.model_dump_json())
        return StreamCreated(id=stream.id)

    @router.patch("/streams/{stream_id}", response_model=StreamView,
                  responses={**STREAM_ERRORS, **FILE_REFUSED},
                  dependencies=[requires_any(Action.RECORD, Action.DETECT, Action.CONFIGURE)])
    async def patch_stream(patch: StreamPatch, stream_id: StreamIdPath) -> StreamView:
        """Change a running stream. Recording, inference and the detection sub-stream
        (`detect_uri`, null to remove it) change in place; a new URI or timeouts restart
        its source. Changes to streams from the config file last until the next restart.
        An operator may toggle recording and detection; anything else is an admin's."""
        changes = patch.model_dump(exclude_unset=True)
        if not current().may_change(changes):
            raise ApiError(403, "forbidden", FORBIDDEN_DETAIL)
        _check_changed_sources(changes, running_stream(manager, stream_id).config,
                               service.config.api.allowed_file_dirs)
        with _refusals():
            stream = await manager.update(stream_id, changes)
        if stream.origin == "api":
            await service.db.run(service.stored.save, stream_id,
                                 stream.config.model_dump_json())
        return stream_view(stream, manager.features)

    @router.get("/streams/{stream_id}", response_model=StreamView, responses=STREAM_ERRORS,
                dependencies=[requires(Action.VIEW)])
    async def get_stream(stream_id: StreamIdPath) -> StreamView:
        return stream_view(running_stream(manager, stream_id), manager.features)

    @router.delete("/streams/{stream_id}", status_code=204, responses=STREAM_ERRORS,
                   dependencies=[requires(Action.CONFIGURE)])
    async def delete_stream(stream_id: StreamIdPath) -> Response:
        """Stop a stream and release everything it held."""
        await manager.remove(checked_id(stream_id))
        await service.db.run(service.stored.delete, stream_id)
        return Response(status_code=204)

    return router
