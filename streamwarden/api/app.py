"""The HTTP API, assembled: error handlers, middleware, one router per resource, the service's
start and stop as the app's lifespan.

Each resource module builds its `APIRouter` the same way, `create_router(service)`; what a
route does is read there. Middleware runs outermost first: the gate (who is asking), the body limit,
then JSON bodies whatever their content type (see auth.py, errors.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from streamwarden.api import (
    auth,
    config,
    dashboard,
    events,
    live,
    monitoring,
    recordings,
    streams,
    timeline,
    ws,
    zones,
)
from streamwarden.api.auth import AuthGate, BodyLimit
from streamwarden.api.errors import AssumeJsonBody, install_error_handlers
from streamwarden.api.params import install_stream_errors

if TYPE_CHECKING:
    from streamwarden.service import Service


def _lifespan(service: Service) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.startup()
        try:
            yield
        finally:
            await service.shutdown()

    return lifespan


def _routers(service: Service) -> list[APIRouter]:
    """One per resource. In a cluster, its router answers `/cluster` and the cluster-wide
    `/streams`, `/health`, `/recordings`, `/events` (included first, so its routes win)."""
    resources = [streams, zones, live, recordings, timeline, events, monitoring, config, auth,
                 ws, dashboard]
    if service.cluster is None:
        return [resource.create_router(service) for resource in resources]
    from streamwarden.api import cluster

    resources.remove(streams)
    clustered = cluster.create_router(service)
    return [clustered, *(_without(resource.create_router(service), clustered)
                         for resource in resources)]


def _without(router: APIRouter, winner: APIRouter) -> APIRouter:
    """`router` less the operations `winner` answers: they could never be reached, and left in
    they would replace the cluster's own in the OpenAPI document (one operation per path and
    method there: the last one wins), so the schema would describe the single-node answers."""
    def operations(route: APIRoute) -> set[tuple[str, str]]:
        return {(route.path, method) for method in route.methods or ()}

    taken = set().union(*(operations(r) for r in winner.routes if isinstance(r, APIRoute)))
    router.routes[:] = [r for r in router.routes
                        if not isinstance(r, APIRoute) or not operations(r) & taken]
    return router


def create_app(service: Service) -> FastAPI:
    app = FastAPI(
        title="streamwarden",
        summary="Camera ingest, recording, inference and restream in one service",
        lifespan=_lifespan(service),
    )
    install_error_handlers(app)
    install_stream_errors(app)
    if service.cluster is not None:
        from streamwarden.api import cluster

        cluster.install(app)
    api_config = service.config.api
    if service.cluster is not None:  # innermost: after the auth gate
        from streamwarden.api.owner_routing import OwnerRouting

        app.add_middleware(OwnerRouting, node=service.cluster)
    app.add_middleware(AssumeJsonBody)
    app.add_middleware(BodyLimit, max_bytes=api_config.max_body_bytes)
    app.add_middleware(AuthGate, gate=service.gate, public_paths=api_config.public_paths)
    for router in _routers(service):
        app.include_router(router)
    app.mount(dashboard.STATIC_PATH, dashboard.static_files(), name="static")
    return app
