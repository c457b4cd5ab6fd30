"""Creating files and directories with the mode they must have, whatever the umask says.

The database holds camera credentials and event pictures; recordings show people. Other users
of the machine must not read them, so every file and directory the service creates gets an
explicit mode at creation (`os.open(..., O_EXCL, mode)` plus `fchmod`, so there is no moment
where it is readable). The process umask is tightened at start-up too (`tighten_umask`), which
covers files created by code that is not ours (GStreamer elements, ffmpeg, SQLite journals).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("streamwarden")

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def tighten_umask() -> int:
    """Keep group and others out of every file this process creates; returns the new umask.

    Bits an operator already masks (systemd `UMask=`) stay masked; only group/other access
    is added to the mask. Files that should be group-readable get their mode explicitly.
    """
    current = os.umask(0o077)
    os.umask(current | 0o077)
    return current | 0o077


def make_dirs(path: Path, mode: int = PRIVATE_DIR) -> None:
    """Create `path` and any missing parents; each directory created here gets `mode`.

    Existing directories are left as they are: their mode is the operator's choice.
    """
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:  # another thread made it between the check and here
            continue
        os.chmod(directory, mode)  # mkdir's mode passed through the umask


def create_file(path: Path, mode: int = PRIVATE_FILE) -> None:
    """Create `path` empty with exactly `mode`; a writer that opens it later keeps the mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def write_new_file(path: Path, data: bytes, mode: int = PRIVATE_FILE) -> None:
    """Write a file that must not exist yet (FileExistsError if it does), durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def others_can_read(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def tighten(path: Path, mode: int = PRIVATE_FILE) -> bool:
    """Remove group/other access from an existing file (one an older version made 0644).

    Returns True if the mode was changed. A file owned by someone else is left alone with a
    warning: its mode is that user's business, and chmod would fail anyway.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    if not info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        return False
    try:
        os.chmod(path, mode)
    except PermissionError:
        log.warning("%s is readable by other users (mode %s) and not ours to change",
                    path, oct(info.st_mode & 0o777))
        return False
    log.warning("%s was readable by other users (mode %s); now %s", path,
                oct(info.st_mode & 0o777), oct(mode))
    return True
