"""File and directory modes in the config: `"0640"`, `"0o750"` or a TOML octal integer `0o640`.

The service writes recordings that may show people and a database that holds credentials, so
a mode may open reading to a group (or, explicitly, to everyone) but never writing: the owner
must keep read and write (and, for directories, search) and nobody else may change the files.
"""

from __future__ import annotations

import re

_OCTAL = re.compile(r"^(?:0o|0)?([0-7]{3})$")
_WRITE_BY_OTHERS = 0o022
_EXEC = 0o111


def format_mode(mode: int) -> str:
    return f"0{mode:03o}"


def _parse(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f'{name} must be an octal mode such as "0640", got {value!r}')
    if isinstance(value, int):
        if 0 <= value <= 0o777:
            return value
        raise ValueError(f'{name} must be an octal mode such as "0640" (a quoted string or '
                         f"0o640), got the number {value}")
    if isinstance(value, str) and (match := _OCTAL.match(value.strip())):
        return int(match.group(1), 8)
    raise ValueError(f'{name} must be an octal mode such as "0640", got {value!r}')


def parse_file_mode(value: object) -> int:
    """A recording file's mode: owner read-write, group/others at most read, no execute."""
    mode = _parse(value, "file_mode")
    if mode & 0o600 != 0o600:
        raise ValueError(f"file_mode {format_mode(mode)} must let the service read and write its "
                         "files (owner rw: 0600 at least)")
    if mode & _WRITE_BY_OTHERS:
        raise ValueError(f"file_mode {format_mode(mode)} lets other users change recordings: "
                         "group and others may read at most (0640, 0644)")
    if mode & _EXEC:
        raise ValueError(f"file_mode {format_mode(mode)} marks recordings executable: "
                         "use read/write bits only (0600, 0640)")
    return mode


def parse_dir_mode(value: object) -> int:
    """A recording directory's mode: owner rwx, group/others at most read and search."""
    mode = _parse(value, "dir_mode")
    if mode & 0o700 != 0o700:
        raise ValueError(f"dir_mode {format_mode(mode)} must let the service create and list "
                         "files (owner rwx: 0700 at least)")
    if mode & _WRITE_BY_OTHERS:
        raise ValueError(f"dir_mode {format_mode(mode)} lets other users add or delete "
                         "recordings: group and others may read and enter at most (0750, 0755)")
    return mode
