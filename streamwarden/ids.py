"""Stream ids: the one user string that becomes a directory name and an element name.

A stream id is checked against one strict pattern before it is used anywhere, so it can never
escape the recordings directory or break a pipeline description. URIs live in `uris.py`.
"""

from __future__ import annotations

import re

STREAM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_STREAM_ID = re.compile(STREAM_ID_PATTERN)
STREAM_ID_HELP = "1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"


def is_valid_stream_id(value: str) -> bool:
    return isinstance(value, str) and bool(_STREAM_ID.match(value))


def validate_stream_id(value: str) -> str:
    if not isinstance(value, str) or not _STREAM_ID.match(value):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        raise ValueError(f"{shown!r} is not a valid stream id: use {STREAM_ID_HELP}")
    return value
