"""`/config`: the effective config (secrets redacted) and reloading the config file.

`GET /config` shows what the service runs with: the global sections (keys that wait for a
restart keep their running values), every running stream with where its definition came
from (`config`: the file, `api`: added through the API), and the last reload's outcome.
`POST /config/reload` does what SIGHUP does and answers with what changed; a file that is
not valid changes nothing and is answered 422 with every problem and its line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from streamwarden.api.access import requires
from streamwarden.api.errors import ApiError
from streamwarden.api.schemas import ErrorBody, Responses
from streamwarden.config.model import SourceSettings
from streamwarden.config.redact import redact
from streamwarden.reload import NoConfigFileError, ReloadRefusedError, ReloadReport
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.ingest.stream import Stream
    from streamwarden.service import Service


class ReloadResult(BaseModel):
    """What a reload did (or why it changed nothing)."""

    time: datetime
    trigger: Literal["api", "signal", "watch"]
    ok: bool
    applied: list[str]  # stream changes ("stream cam1 restarted (uri)") and global keys
    needs_restart: list[str]  # global keys that keep their running value until a restart
    errors: list[str]  # problems in the file (with lines), or changes that failed


class ConfiguredStream(BaseModel):
    id: str
    source: Literal["config", "api"]  # the config file, or added through the API
    definition: dict[str, Any]  # as written (URI redacted)
    settings: SourceSettings  # effective source settings, defaults applied


class ConfigView(BaseModel):
    path: str | None  # the config file (None: started without one)
    config: dict[str, Any]  # global sections, secrets masked
    streams: list[ConfiguredStream]
    last_reload: ReloadResult | None


class ConfigProblem(BaseModel):
    key: str
    line: int | None
    message: str


class ConfigRefused(ErrorBody):
    """422 `invalid_config`: the file is not valid; the running config is unchanged."""

    issues: list[ConfigProblem] = []


_RELOAD_ANSWERS: Responses = {
    409: {"model": ErrorBody, "description": "The service was started without a config file"},
    422: {"model": ConfigRefused, "description": "The file is not valid; nothing changed"},
}


def result_of(report: ReloadReport) -> ReloadResult:
    return ReloadResult(time=datetime.fromtimestamp(report.time, UTC),
                        trigger=report.trigger,
                        ok=report.ok, applied=list(report.applied),
                        needs_restart=list(report.needs_restart), errors=list(report.errors))


def _stream(stream: Stream) -> ConfiguredStream:
    return ConfiguredStream(
        id=stream.id, source="api" if stream.origin == "api" else "config",
        definition=redact(stream.config.model_dump(mode="json", exclude_none=True)),
        settings=stream.settings)


def _refused(exc: ReloadRefusedError) -> JSONResponse:
    error = exc.error
    issues = sorted(error.issues, key=lambda i: i.line or 0)
    detail = (f"{error.source}: {len(issues)} problem(s), the running config is unchanged: "
              + "; ".join(issue.format(error.source) for issue in issues))
    body = ConfigRefused(error="invalid_config", detail=detail, issues=[
        ConfigProblem(key=i.key, line=i.line, message=i.message) for i in issues])
    return JSONResponse(body.model_dump(), status_code=422)


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["config"])
    reloader = service.reloader

    @router.get("/config", response_model=ConfigView, dependencies=[requires(Action.CONFIGURE)])
    async def get_config() -> ConfigView:
        """The effective config, secrets redacted, and the last reload's outcome."""
        sections = service.config.model_dump(mode="json", exclude={"streams"})
        last = reloader.last
        return ConfigView(
            path=str(reloader.source.path) if reloader.source else None,
            config=redact(sections),
            streams=[_stream(s) for s in service.manager.all()],
            last_reload=result_of(last) if last else None)

    @router.post("/config/reload", response_model=ReloadResult, responses=_RELOAD_ANSWERS,
                 dependencies=[requires(Action.CONFIGURE)])
    async def reload_config() -> ReloadResult | JSONResponse:
        """Read the config file again and apply only what changed (as SIGHUP does)."""
        try:
            report = await reloader.reload("api")
        except NoConfigFileError:
            raise ApiError(409, "no_config_file", "the service was started without a config "
                           "file (--config): there is nothing to reload") from None
        except ReloadRefusedError as exc:
            return _refused(exc)
        return result_of(report)

    return router
