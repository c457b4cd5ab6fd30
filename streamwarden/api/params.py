"""Parameters shared by routes: the stream id in paths and queries, validated one way and
resolved to the running stream one way; times in queries and answers read one way.

Every route under `/streams/{stream_id}` that needs the running stream calls `running_stream`:
the id is checked before it touches anything (a 422 that says what an id may be), then looked
up; an unknown id raises `StreamNotFoundError`, which `no_such_stream` (installed on the app)
answers with the API's 404. The manager raises the same exception when a stream goes away
between the look-up and a change (a concurrent DELETE), so that race gets the same answer
without a handler of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse

from streamwarden.api.access import stream_visible
from streamwarden.api.errors import ApiError, error_response
from streamwarden.ids import STREAM_ID_HELP, STREAM_ID_PATTERN, is_valid_stream_id
from streamwarden.manager import StreamNotFoundError

if TYPE_CHECKING:
    from streamwarden.ingest.stream import Stream
    from streamwarden.manager import StreamManager

_SCHEMA = {"pattern": STREAM_ID_PATTERN}

StreamIdPath = Annotated[str, Path(description=f"stream id: {STREAM_ID_HELP}",
                                   json_schema_extra=_SCHEMA)]
StreamIdQuery = Annotated[str | None, Query(description=f"stream id: {STREAM_ID_HELP}",
                                            json_schema_extra=_SCHEMA)]


def to_timestamp(value: datetime) -> float:
    """A query's time as a Unix timestamp; a time without a zone is UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def to_timestamp_or_none(value: datetime | None) -> float | None:
    return None if value is None else to_timestamp(value)


def from_timestamp(ts: float | None) -> datetime | None:
    """A stored Unix timestamp as the API's UTC time."""
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def checked_id(stream_id: str) -> str:
    """The id, or a 422 that says what an id may be (before the id touches anything); a
    stream the caller may not see is, to it, a stream that does not exist (the same 404)."""
    if not is_valid_stream_id(stream_id):
        raise ApiError(422, "invalid_id", f"not a valid stream id: use {STREAM_ID_HELP}")
    if not stream_visible(stream_id):
        raise StreamNotFoundError(stream_id)
    return stream_id


def running_stream(manager: StreamManager, stream_id: str) -> Stream:
    """The running stream a path names: the id checked, then looked up (an unknown one raises
    StreamNotFoundError, answered by `no_such_stream`).

    Called first thing in the route rather than declared as a FastAPI `Depends`: FastAPI runs
    dependencies before it validates the route's own query and body, and the API answers a
    malformed request with its 422 before it looks anything up (a stream that does not exist
    and a bad `fps` is a 422, as tests/test_api.py and tests/test_mjpeg.py check).
    """
    return manager.get(checked_id(stream_id))


async def no_such_stream(_request: Request, exc: Exception) -> JSONResponse:
    """The one answer to an unknown stream id, wherever in a request it turns up."""
    stream_id = exc.args[0] if exc.args else ""
    return error_response(404, "not_found", f"no stream with id {stream_id!r}")


def install_stream_errors(app: FastAPI) -> None:
    app.add_exception_handler(StreamNotFoundError, no_such_stream)
