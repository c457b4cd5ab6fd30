"""`/streams/{id}/zones`: a stream's zones and masks, read and replaced while it runs.

The body is what a polygon editor holds: every zone and every mask of the stream, points in
fractions of the frame (so they fit the stream's snapshot at any size). A PUT replaces both
lists at once and applies them in place: the camera keeps streaming, the event log and the
worker's motion gate use them from the next frame. Bad polygons (fewer than 3 points, a
coordinate outside 0-1, crossing edges), duplicate names, and removing a zone the stream's
own `record_on` names are 422s that say which and why. Like PATCH, a change to a stream from
the config file lasts until the service restarts (or a reload changes that stream's entry in
the file, config/diff.py); an API-added stream stores it. Reading needs `view`, replacing
needs `configure`; a stream outside the caller's list is, to it, a 404 (`running_stream`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from pydantic import ValidationError

from streamwarden.api.access import requires
from streamwarden.api.errors import ApiError, describe_errors
from streamwarden.api.params import StreamIdPath, running_stream
from streamwarden.api.schemas import STREAM_ERRORS, StreamZones
from streamwarden.config.model import StreamConfig
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.service import Service


def _zones(config: StreamConfig) -> StreamZones:
    return StreamZones(zones=config.zones, masks=config.masks)


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["streams"])
    manager = service.manager

    @router.get("/streams/{stream_id}/zones", response_model=StreamZones,
                responses=STREAM_ERRORS, dependencies=[requires(Action.VIEW)])
    async def get_zones(stream_id: StreamIdPath) -> StreamZones:
        """The stream's zones and masks."""
        return _zones(running_stream(manager, stream_id).config)

    @router.put("/streams/{stream_id}/zones", response_model=StreamZones,
                responses=STREAM_ERRORS, dependencies=[requires(Action.CONFIGURE)])
    async def put_zones(body: StreamZones, stream_id: StreamIdPath) -> StreamZones:
        """Replace the stream's zones and masks, in place (the camera is not restarted)."""
        running_stream(manager, stream_id)
        changes = {"zones": [zone.model_dump() for zone in body.zones], "masks": body.masks}
        try:
            stream = await manager.update(stream_id, changes)
        except ValidationError as exc:  # e.g. the stream's record_on names a removed zone
            raise ApiError(422, "invalid_request", describe_errors(exc.errors())[1]) from None
        if stream.origin == "api":
            await service.db.run(service.stored.save, stream_id,
                                 stream.config.model_dump_json())
        return _zones(stream.config)

    return router
