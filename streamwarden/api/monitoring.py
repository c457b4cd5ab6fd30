"""`/health`, `/health/live`, `/health/ready` and `/metrics`: what monitoring polls (open
without a token by default, see `[api] public_paths`).

`/health/live` answers while the process serves requests (a container runtime restarts it when
it stops answering); `/health/ready` is 200 once the service has loaded its config, opened its
database and attempted every stream once, and 503 before that and while shutting down (see
readiness.py), so an orchestrator sends traffic only to a service that can answer it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from streamwarden.api.access import current, requires
from streamwarden.api.errors import ApiError
from streamwarden.api.metrics import CONTENT_TYPE, make_registry, render
from streamwarden.api.schemas import ErrorBody, HealthEntry, Liveness, Readiness, Responses
from streamwarden.api.views import stream_health
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.service import Service

_PROMETHEUS: Responses = {
    200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}}
_NOT_READY: Responses = {503: {"model": ErrorBody, "description": "Not ready (yet): why"}}


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["monitoring"])
    manager = service.manager
    registry = make_registry(service)

    @router.get("/health", response_model=list[HealthEntry],
                dependencies=[requires(Action.VIEW)])
    async def health() -> list[HealthEntry]:
        """One entry per stream: state, retries, last frame age, fps, bitrate."""
        principal = current()
        return [HealthEntry(**stream_health(p, manager.features)) for p in manager.all()
                if principal.sees(p.id)]

    @router.get("/health/live", response_model=Liveness, dependencies=[requires(Action.VIEW)])
    async def live() -> Liveness:
        """The process answers. Nothing else is checked: restarting it would not help."""
        return Liveness()

    @router.get("/health/ready", response_model=Readiness, responses=_NOT_READY,
                dependencies=[requires(Action.VIEW)])
    async def ready() -> Readiness:
        """Config loaded, database open, every stream attempted once; 503 `not_ready` (with
        the reason) before that and while shutting down."""
        verdict = await service.ready()
        if not verdict.ready:
            raise ApiError(503, "not_ready", verdict.reason)
        return Readiness(detail=verdict.reason)

    @router.get("/metrics", response_class=PlainTextResponse, responses=_PROMETHEUS,
                dependencies=[requires(Action.METRICS)])
    async def metrics() -> PlainTextResponse:
        """Per-stream frames, bytes, fps, bitrate, retries, state, recording; process CPU/RSS."""
        body = await asyncio.to_thread(render, registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE)

    return router
