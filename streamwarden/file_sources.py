"""Which `file://` sources an API client may add: only files under `[api] allowed_file_dirs`.

A file source makes the service open a local path with its own permissions, so an API client
must not be able to name any file it likes (`/etc/shadow`, the database, the key file). The
config file is the operator's and may name any file; an API client's path is decoded the way
GStreamer decodes it (percent-escapes), resolved through symlinks and `..`, and must land
under one of the listed directories. The check is repeated when a stored stream is loaded at
start-up, so removing a directory from the list also stops the streams that used it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit


def file_source_problem(uri: str, allowed_dirs: Sequence[str]) -> str | None:
    """Why an API client may not use `uri` (None if it may, or if it is not a file URI)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return None
    if not allowed_dirs:
        return ("file:// sources can only be set in the config file (no [api] allowed_file_dirs "
                "are configured)")
    if parts.query or parts.fragment:
        return "a file:// source from the API cannot have a query (?) or a fragment (#)"
    path = unquote(parts.path)
    if "\x00" in path:
        return "the file path contains a NUL character"
    try:
        resolved = Path(path).resolve()
        roots = [Path(d).resolve() for d in allowed_dirs]
    except (OSError, RuntimeError, ValueError):  # a symlink loop, say
        return "the file path cannot be resolved"
    if any(resolved.is_relative_to(root) for root in roots):
        return None
    return (f"the file is not inside the directories API clients may use "
            f"([api] allowed_file_dirs: {', '.join(allowed_dirs)})")
