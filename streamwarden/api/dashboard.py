"""The web dashboard: `/` and its static files under `/static` (see streamwarden/web/).

The page holds no data (the API's token guard lets it through, see auth.py); it asks for the
token and reads everything else from the API. The static files are a mount, which a router
cannot carry, so the app mounts `static_files()` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter

from streamwarden.api.files import ApiFileResponse, ApiStaticFiles

if TYPE_CHECKING:
    from streamwarden.service import Service

WEB_ROOT = Path(__file__).resolve().parent.parent / "web" / "static"
STATIC_PATH = "/static"


def create_router(_service: Service) -> APIRouter:
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def dashboard() -> ApiFileResponse:
        """The web dashboard (a static page; its data comes from the API with the token)."""
        return ApiFileResponse(WEB_ROOT / "index.html")

    return router


def static_files() -> ApiStaticFiles:
    """The page's scripts and styles; Range refusals in the API's error shape."""
    return ApiStaticFiles(directory=WEB_ROOT)
