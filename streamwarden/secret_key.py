"""The key that encrypts secrets at rest, in a 0600 file of its own next to the database.

Fernet (from `cryptography`: AES-128-CBC with an HMAC-SHA256, authenticated, versioned) keeps
the code here to reading and writing one key. The key lives in its own file so a copied
database or backup of it alone reveals no camera password; whoever reads the key file (or the
process's memory) can decrypt everything, which docs/configuration.md says plainly.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from streamwarden.private_files import make_dirs, others_can_read, write_new_file

log = logging.getLogger("streamwarden")

PREFIX = "fernet:"  # marks encrypted text in the database; older plain JSON starts with "{"


class SecretKeyError(RuntimeError):
    """The key file is missing, unreadable or does not fit the database: start-up stops."""


class SecretBox:
    """Encrypts and decrypts text with one key; encrypted text carries PREFIX."""

    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    def encrypt(self, text: str) -> str:
        return PREFIX + self._fernet.encrypt(text.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The plain text; InvalidToken if it was encrypted with another key or altered."""
        return self._fernet.decrypt(stored.removeprefix(PREFIX).encode("ascii")).decode()


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def load_key(path: Path) -> bytes:
    """Read an existing key file; a bad one is a SecretKeyError (never replaced)."""
    try:
        key = path.read_bytes().strip()
        Fernet(key)
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key file {path}: {exc.strerror}") from None
    except ValueError:
        raise SecretKeyError(
            f"the secret key file {path} does not hold a key (44 URL-safe base64 characters, "
            "as written by streamwarden); restore it from a backup") from None
    if others_can_read(path):
        log.warning("the secret key file %s is readable by other users: chmod 600 it", path)
    return key


def create_key(path: Path) -> bytes:
    """Write a new random key to `path` (mode 0600); FileExistsError if one appeared."""
    make_dirs(path.parent)
    key = Fernet.generate_key()
    write_new_file(path, key + b"\n")
    log.info("created the secret key file %s (keep it with backups of the database, "
             "but not in the same place)", path)
    return key


__all__ = ["PREFIX", "InvalidToken", "SecretBox", "SecretKeyError", "create_key",
           "is_encrypted", "load_key"]
