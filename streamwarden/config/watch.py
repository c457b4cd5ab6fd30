"""Noticing that the config file changed, cheaply enough to ask every second.

Each poll is one `stat`; the file is read and hashed only when its size, modification time or
inode changed (an editor that saves by renaming gives a new inode). A change counts only when
the content differs from what was last loaded, so touching the file, or saving it unchanged,
reloads nothing, and a broken file is reported once, not every second until it is fixed.
The reloader calls `loaded(text)` with the very text it parsed, whatever started the reload
(API, SIGHUP or this watch), so an edit made while a reload ran is still seen by the next poll.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_Signature = tuple[int, int, int]  # inode, size, mtime in ns


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FileWatch:
    def __init__(self, path: Path):
        self.path = path
        self._signature: _Signature | None = None
        self._digest: str | None = None

    def loaded(self, text: str) -> None:
        """The content the service just loaded (or refused): changes are counted from it."""
        self._digest = digest(text)

    def poll(self) -> bool:
        """True when the file's content differs from the last loaded one."""
        try:
            st = os.stat(self.path)
        except OSError:
            self._signature = None
            return False  # gone for a moment (an editor's rename): look again next time
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return True  # unreadable now: the reload reports why
        return digest(text) != self._digest
