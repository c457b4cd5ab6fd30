"""The API of a clustered node: `GET /cluster`, and `/streams`, `/health`, `/recordings`,
`/events` answered for the whole cluster from PostgreSQL (any node answers them the same).

Installed by app.py instead of the single-node `/streams` router (and ahead of the
single-node `/health`, `/recordings`, `/events`) only when `[cluster]` is configured.
Changes to the camera list are written to the database; the owner applies them (at once when
it is this node, within one renewal interval elsewhere). Routes that need the camera or the
files themselves are redirected by owner_routing.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from streamwarden.api import cluster_timeline, owner_routing
from streamwarden.api.access import (
    FORBIDDEN_DETAIL,
    current,
    requires,
    requires_any,
    visible_streams,
)
from streamwarden.api.cluster_views import (
    EVENT_COLUMNS,
    RECORDING_COLUMNS,
    ClusterView,
    event_view,
    node_view,
    recording_view,
    remote_view,
)
from streamwarden.api.errors import ApiError, describe_errors, error_response
from streamwarden.api.params import StreamIdPath, StreamIdQuery, checked_id, to_timestamp_or_none
from streamwarden.api.schemas import (
    ERRORS,
    STREAM_ERRORS,
    EventView,
    HealthEntry,
    Recording,
    StreamCreated,
    StreamPatch,
    StreamView,
    StreamZones,
)
from streamwarden.api.streams import (
    DUPLICATE,
    FILE_REFUSED,
    check_file_source,
    check_new_stream,
    stream_view,
)
from streamwarden.cluster.store import StoreUnavailableError
from streamwarden.config.model import StreamConfig
from streamwarden.inference.zones import ZONE_NAME_PATTERN
from streamwarden.manager import StreamNotFoundError
from streamwarden.recording.retention_rule import Padding
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.service import Service

T = TypeVar("T")
_UTC = "ISO 8601; UTC if no zone"


async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, "database_unavailable",
                          f"the cluster's database cannot be reached: {exc}")


def install(app: FastAPI) -> None:
    """The database's absence as a clear 503, and the cluster's extra answers (redirects,
    503s) in the OpenAPI document, so clients generated from it know them."""
    app.add_exception_handler(StoreUnavailableError, _unavailable)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = owner_routing.document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class _Reads:
    """The camera list and owners as the routes read them (decrypted, with live views of the
    streams running here)."""

    def __init__(self, service: Service):
        node = service.cluster
        assert node is not None
        self.service, self.node, self.store = service, node, node.api_store

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def catalog(self) -> dict[str, tuple[StreamConfig, str]]:
        _, rows = await self.call(self.store.catalog)
        return {row.stream_id: (entry.config, entry.source) for row in rows
                if (entry := self.node.codec.open_row(row)) is not None}

    def view(self, config: StreamConfig, source: str, owners: dict) -> StreamView:
        service, node = self.service, self.node
        if config.id in node.held and config.id in service.streams:
            local = stream_view(service.streams.get(config.id), service.manager.features)
            return local.model_copy(update={"owner": node.node_id})
        owner, _fence, _url, stored = owners.get(config.id, (None, 0, None, None))
        return remote_view(config, source, service.config.stream_defaults, owner, stored)

    async def all(self) -> list[StreamView]:
        entries, owners = await self.catalog(), await self.call(self.store.owners)
        principal = current()
        return [self.view(config, source, owners) for config, source in entries.values()
                if principal.sees(config.id)]

    async def entry(self, stream_id: str) -> tuple[StreamConfig, str]:
        """A camera of the list this caller sees (to others: a 404, as a single node)."""
        entries = await self.catalog()
        if checked_id(stream_id) not in entries or not current().sees(stream_id):
            raise StreamNotFoundError(stream_id)
        return entries[stream_id]

    async def one(self, stream_id: str) -> StreamView:
        entry = await self.entry(stream_id)
        return self.view(*entry, await self.call(self.store.owners))

    async def write(self, stream_id: str, config: StreamConfig, source: str,
                    changes: dict[str, Any]) -> None:
        """A changed camera into the list; applied at once when it runs here (the owner
        applies it within one renewal elsewhere)."""
        await self.call(self.store.put_stream, stream_id, *self.node.codec.seal(config), source)
        if stream_id in self.node.held and stream_id in self.service.streams:
            await self.service.manager.update(stream_id, changes)
        self.node.wake()


def create_router(service: Service) -> APIRouter:
    reads = _Reads(service)
    node, call = reads.node, reads.call
    router = APIRouter(tags=["cluster"])

    @router.get("/cluster", response_model=ClusterView, dependencies=[requires(Action.VIEW)])
    async def cluster() -> ClusterView:
        """The nodes (status, lease age, cameras, CPU and load) and this node's leases. While
        the database is away: this node's own part only (no node list)."""
        try:
            rows = await call(node.api_store.nodes)
        except StoreUnavailableError:
            rows = []
        return ClusterView(node_id=node.node_id, database=node.status.database,
                           lease_s=node.section.lease, nodes=[node_view(r) for r in rows],
                           held=dict(node.held),
                           running=sorted(s.id for s in service.manager.all()),
                           index_rows_accepted=node.replicator.accepted,
                           index_rows_rejected=node.replicator.rejected)

    @router.get("/streams", response_model=list[StreamView],
                dependencies=[requires(Action.VIEW)])
    async def list_streams() -> list[StreamView]:
        """Every camera of the cluster, with its `owner`."""
        return await reads.all()

    @router.get("/streams/{stream_id}", response_model=StreamView, responses=STREAM_ERRORS,
                dependencies=[requires(Action.VIEW)])
    async def get_stream(stream_id: StreamIdPath) -> StreamView:
        return await reads.one(checked_id(stream_id))

    @router.get("/health", response_model=list[HealthEntry],
                dependencies=[requires(Action.VIEW)])
    async def health() -> list[HealthEntry]:
        """Every camera of the cluster, from its owner (stopped: no live owner)."""
        return [v.health for v in await reads.all()]

    _change_routes(router, reads)
    _zone_routes(router, reads)
    _index_routes(router, call, node.api_store, service.storage_limits.padding)
    cluster_timeline.add_route(router, node.api_store, reads.entry, call)
    return router


def _zone_routes(router: APIRouter, reads: _Reads) -> None:
    """A camera's zones and masks in the cluster's list (api/zones.py's answers, from any
    node): kept across moves, and not undone by the owner's next reading of the list."""

    @router.get("/streams/{stream_id}/zones", response_model=StreamZones,
                responses=STREAM_ERRORS, dependencies=[requires(Action.VIEW)])
    async def get_zones(stream_id: StreamIdPath) -> StreamZones:
        """The camera's zones and masks."""
        stored, _ = await reads.entry(stream_id)
        return StreamZones(zones=stored.zones, masks=stored.masks)

    @router.put("/streams/{stream_id}/zones", response_model=StreamZones,
                responses=STREAM_ERRORS, dependencies=[requires(Action.CONFIGURE)])
    async def put_zones(body: StreamZones, stream_id: StreamIdPath) -> StreamZones:
        """Replace the camera's zones and masks for the whole cluster, in place."""
        stored, source = await reads.entry(stream_id)
        changes = {"zones": [zone.model_dump() for zone in body.zones], "masks": body.masks}
        try:  # e.g. the stream's record_on names a removed zone
            merged = StreamConfig.model_validate({**stored.model_dump(), **changes})
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", describe_errors(exc.errors())[1]) from None
        await reads.write(stream_id, merged, source, changes)
        return StreamZones(zones=merged.zones, masks=merged.masks)


def _merged(stored: StreamConfig, changes: dict[str, Any], service: Service) -> StreamConfig:
    """A PATCH on the stored camera: allowed for this caller, valid, a file it may name."""
    if not current().may_change(changes):
        raise ApiError(403, "forbidden", FORBIDDEN_DETAIL)
    try:  # valid alone, and with the defaults (as a single node's PATCH: manager.update)
        merged = StreamConfig.model_validate({**stored.model_dump(), **changes})
        merged.settings(service.config.stream_defaults)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", describe_errors(exc.errors())[1]) from None
    if merged.uri != stored.uri:
        check_file_source(merged.uri, service.config.api.allowed_file_dirs)
    return merged


def _change_routes(router: APIRouter, reads: _Reads) -> None:
    service, node, call, store = reads.service, reads.node, reads.call, reads.store
    codec = node.codec

    # the same answers as the single node's (api/streams.py): one contract for both
    @router.post("/streams", status_code=201, response_model=StreamCreated,
                 responses={**DUPLICATE, **STREAM_ERRORS, **FILE_REFUSED},
                 dependencies=[requires(Action.CONFIGURE)])
    async def add_stream(stream: StreamConfig) -> StreamCreated:
        """Add a camera to the cluster's list; a node takes it within one renewal."""
        check_new_stream(stream, service.config)
        sealed, digest = codec.seal(stream)
        if not await call(store.put_stream, stream.id, sealed, digest, "api", True):
            raise ApiError(409, "duplicate_id", f"a stream with id {stream.id!r} exists")
        node.wake()
        return StreamCreated(id=stream.id)

    @router.patch("/streams/{stream_id}", response_model=StreamView,
                  responses={**STREAM_ERRORS, **FILE_REFUSED},
                  dependencies=[requires_any(Action.RECORD, Action.DETECT, Action.CONFIGURE)])
    async def patch_stream(patch: StreamPatch, stream_id: StreamIdPath) -> StreamView:
        """Change a camera for the whole cluster; its owner applies it."""
        stored, source = await reads.entry(stream_id)
        changes = patch.model_dump(exclude_unset=True)
        await reads.write(stream_id, _merged(stored, changes, service), source, changes)
        return await reads.one(stream_id)

    @router.delete("/streams/{stream_id}", status_code=204, responses=STREAM_ERRORS,
                   dependencies=[requires(Action.CONFIGURE)])
    async def delete_stream(stream_id: StreamIdPath) -> Response:
        """Remove a camera from the cluster; its owner stops it."""
        if not await call(store.delete_stream, checked_id(stream_id)):
            raise StreamNotFoundError(stream_id)
        node.wake()
        return Response(status_code=204)


def _index_routes(router: APIRouter, call: Callable, store: Any,
                  padding: Callable[[str], Padding]) -> None:
    @router.get("/recordings", response_model=list[Recording], responses=ERRORS,
                dependencies=[requires(Action.RECORDINGS)])
    async def list_recordings(
        stream_id: StreamIdQuery = None,
        start: Annotated[datetime | None, Query(description=_UTC)] = None,
        end: Annotated[datetime | None, Query(description=_UTC)] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    ) -> list[Recording]:
        """Segments of the whole cluster, with the node that holds each file."""
        start_ts, end_ts = to_timestamp_or_none(start), to_timestamp_or_none(end)
        if start_ts is not None and end_ts is not None and end_ts < start_ts:
            raise ApiError(422, "invalid_range", "end is before start")
        sql = (f"SELECT {RECORDING_COLUMNS} FROM cluster_recordings WHERE "
               "(%(sid)s::text IS NULL OR stream_id = %(sid)s) AND "
               "(%(start)s::float8 IS NULL OR COALESCE(end_ts, start_ts) >= %(start)s) AND "
               "(%(end)s::float8 IS NULL OR start_ts <= %(end)s) AND "
               "(%(seen)s::text[] IS NULL OR stream_id = ANY(%(seen)s)) "
               "ORDER BY start_ts, id LIMIT %(limit)s")
        rows = await call(store.execute, sql, {
            "sid": checked_id(stream_id) if stream_id else None, "start": start_ts,
            "end": end_ts, "limit": limit, "seen": visible_streams()})
        return [recording_view(row) for row in rows]

    @router.get("/events", response_model=list[EventView], responses=ERRORS,
                dependencies=[requires(Action.EVENTS)])
    async def list_events(
        stream_id: StreamIdQuery = None,
        label: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[datetime | None, Query(description=_UTC)] = None,
        until: Annotated[datetime | None, Query(description=_UTC)] = None,
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
        zone: Annotated[str | None, Query(pattern=ZONE_NAME_PATTERN,
                                          description="only objects that entered this zone")
                        ] = None,
    ) -> list[EventView]:
        """Detection events (one per tracked object) of the whole cluster, newest first."""
        since_ts, until_ts = to_timestamp_or_none(since), to_timestamp_or_none(until)
        if since_ts is not None and until_ts is not None and until_ts < since_ts:
            raise ApiError(422, "invalid_range", "until is before since")
        sql = (f"SELECT {EVENT_COLUMNS} FROM cluster_events e LEFT JOIN cluster_nodes n "
               "ON n.node_id = e.node_id WHERE (%(sid)s::text IS NULL OR e.stream_id = %(sid)s)"
               " AND (%(label)s::text IS NULL OR e.label = %(label)s) AND "
               "(%(since)s::float8 IS NULL OR e.end_ts >= %(since)s) AND "
               "(%(until)s::float8 IS NULL OR e.start_ts <= %(until)s) AND "
               "(%(zone)s::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements("
               "e.zones::jsonb) z WHERE z ->> 'zone' = %(zone)s)) AND "
               "(%(seen)s::text[] IS NULL OR e.stream_id = ANY(%(seen)s)) "
               "ORDER BY e.start_ts DESC, e.id DESC LIMIT %(limit)s")
        rows = await call(store.execute, sql, {
            "sid": checked_id(stream_id) if stream_id else None, "label": label,
            "since": since_ts, "until": until_ts, "limit": limit, "zone": zone,
            "seen": visible_streams()})
        return [event_view(row, padding) for row in rows]
