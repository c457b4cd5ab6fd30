"""Detection events and the inference status: list, picture, worker health."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Query, Response

from streamwarden.api.access import requires, visible_streams
from streamwarden.api.errors import ApiError
from streamwarden.api.params import (
    StreamIdQuery,
    checked_id,
    from_timestamp,
    to_timestamp_or_none,
)
from streamwarden.api.schemas import ERRORS, EventView, InferenceStatus, PathPoint, ZoneEntry
from streamwarden.db import EventRow
from streamwarden.inference.zones import ZONE_NAME_PATTERN
from streamwarden.recording.retention_rule import Padding
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.service import Service


def event_from_row(row: EventRow, padding: Padding) -> EventView:
    """An index row as the API shows it (the cluster's index reuses it, cluster_views.py)."""
    return EventView(id=row.id, stream_id=row.stream_id, label=row.label,
                     start=from_timestamp(row.start_ts), end=from_timestamp(row.end_ts),
                     confidence=round(row.confidence, 4), box=json.loads(row.box),
                     detections=row.detections, model=row.model, pts=row.pts,
                     snapshot_url=f"/events/{row.id}/snapshot.jpg" if row.has_snapshot else None,
                     object_id=row.object_id,
                     zones=[ZoneEntry(zone=z["zone"], entered=from_timestamp(z["entered"]))
                            for z in json.loads(row.zones)],
                     path=[PathPoint(time=from_timestamp(t), x=x, y=y)
                           for t, x, y in json.loads(row.path)],
                     stationary=row.stationary, active=row.active,
                     footage_start=from_timestamp(row.start_ts - padding.pre),
                     footage_end=from_timestamp(row.end_ts + padding.post))


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["inference"])
    db = service.db

    @router.get("/events", response_model=list[EventView], responses=ERRORS,
                dependencies=[requires(Action.EVENTS)])
    async def list_events(
        stream_id: StreamIdQuery = None,
        label: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[datetime | None, Query(description="ISO 8601; UTC if no zone")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601; UTC if no zone")] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
        zone: Annotated[str | None, Query(pattern=ZONE_NAME_PATTERN,
                                          description="only objects that entered this zone")
                        ] = None,
    ) -> list[EventView]:
        """Detection events (one per tracked object), newest first."""
        if stream_id is not None:
            checked_id(stream_id)
        since_ts, until_ts = to_timestamp_or_none(since), to_timestamp_or_none(until)
        if since_ts is not None and until_ts is not None and until_ts < since_ts:
            raise ApiError(422, "invalid_range", "until is before since")
        rows = await db.run(db.events, stream_id, label, since_ts, until_ts, limit, zone,
                            visible_streams())
        padding = service.storage_limits.padding
        return [event_from_row(row, padding(row.stream_id)) for row in rows]

    @router.get("/events/{event_id}/snapshot.jpg", response_class=Response,
                responses={200: {"content": {"image/jpeg": {}}}, **ERRORS},
                dependencies=[requires(Action.EVENTS)])
    async def event_snapshot(event_id: Annotated[int, Path(ge=1, le=2**62)]) -> Response:
        """The picture of the event's most confident detection, boxes drawn."""
        jpeg = await db.run(db.event_snapshot, event_id, visible_streams())
        if jpeg is None:
            raise ApiError(404, "not_found", f"no picture for event {event_id}")
        return Response(jpeg, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400"})

    @router.get("/inference", response_model=InferenceStatus,
                dependencies=[requires(Action.VIEW)])
    async def inference_status() -> InferenceStatus:
        """The worker: state, restarts, model, runtime, warnings (e.g. a CPU fallback)."""
        return InferenceStatus(**service.inference.status())

    return router
