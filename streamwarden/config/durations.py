"""Human durations and sizes for the config file and the API ("500ms", "5s", "10m", "1h", "7d").

Operators write durations the way MediaMTX and Frigate configs do; a plain number means
seconds (the design note's `health_check_interval = 5`). Anything else is rejected with a
message that shows the accepted forms, never guessed ("5 minutes" is an error).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_DURATION_S = 10 * 365 * 86400.0
DURATION_HELP = 'a duration like "500ms", "5s", "10m", "1h" or "7d" (a bare number is seconds)'

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
SIZE_HELP = 'a size like "500MB", "5GB" or "1TiB" (a bare number is bytes)'


def parse_duration(value: Any) -> float:
    """Seconds from a duration string or a number of seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected {DURATION_HELP}, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    if not seconds <= MAX_DURATION_S:  # also catches inf and nan
        raise ValueError(f"a duration can be at most 10 years, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:  # exact: 0.0001 s is "0.1ms", never "0ms"
        return f"{seconds * 1000:g}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_size(value: Any) -> int:
    """Bytes from a size string or a number of bytes; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected {SIZE_HELP}, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = (match.group(2) or "b").lower()
            return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"expected {SIZE_HELP}, got {value!r}")


_DURATION_SCHEMA = {"anyOf": [
    {"type": "number", "minimum": 0, "maximum": MAX_DURATION_S},
    {"type": "string", "pattern": r"^\d+(\.\d+)?(ms|s|m|h|d)$"},
], "description": DURATION_HELP}

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
    WithJsonSchema(_DURATION_SCHEMA, mode="validation"),
]
ByteSize = Annotated[int, BeforeValidator(parse_size)]
