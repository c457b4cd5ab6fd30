"""Parameters shared by routes: the stream id in paths and queries, validated one way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from streamwarden.api.errors import ApiError
from streamwarden.ids import STREAM_ID_HELP, STREAM_ID_PATTERN, is_valid_stream_id

_SCHEMA = {"pattern": STREAM_ID_PATTERN}

StreamIdPath = Annotated[str, Path(description=f"stream id: {STREAM_ID_HELP}",
                                   json_schema_extra=_SCHEMA)]
StreamIdQuery = Annotated[str | None, Query(description=f"stream id: {STREAM_ID_HELP}",
                                            json_schema_extra=_SCHEMA)]


def checked_id(stream_id: str) -> str:
    """The id, or a 422 that says what an id may be (before the id touches anything)."""
    if not is_valid_stream_id(stream_id):
        raise ApiError(422, "invalid_id", f"not a valid stream id: use {STREAM_ID_HELP}")
    return stream_id
