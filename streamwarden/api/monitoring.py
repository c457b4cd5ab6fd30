"""`/health` and `/metrics`: what monitoring polls (open without a token by default, see
`[api] public_paths`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from streamwarden.api.access import current, requires
from streamwarden.api.metrics import CONTENT_TYPE, make_registry, render
from streamwarden.api.schemas import HealthEntry, Responses
from streamwarden.api.views import stream_health
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.service import Service

_PROMETHEUS: Responses = {
    200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}}


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

    @router.get("/metrics", response_class=PlainTextResponse, responses=_PROMETHEUS,
                dependencies=[requires(Action.METRICS)])
    async def metrics() -> PlainTextResponse:
        """Per-stream frames, bytes, fps, bitrate, retries, state, recording; process CPU/RSS."""
        body = await asyncio.to_thread(render, registry)
        return PlainTextResponse(body, media_type=CONTENT_TYPE)

    return router
