"""Streams added through the API, kept in the database with their whole JSON encrypted.

A stream's JSON holds its URI and so the camera's password; the database file is the thing
most likely to be copied (backups, support bundles), so each row is encrypted with the key in
the secret key file (streamwarden.secret_key). Rows written by older versions are plain JSON:
they still load, and are rewritten encrypted when the store opens.

Opening is strict where a mistake would lose data: encrypted rows without a key file, or rows
the key cannot decrypt, stop start-up with a sentence that says what to restore. No new key is
made then and no row is touched, so putting the right key file back recovers everything.
All methods run on the database thread (`db.call` / `db.run`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from streamwarden.db import Database
from streamwarden.secret_key import (
    InvalidToken,
    SecretBox,
    SecretKeyError,
    create_key,
    is_encrypted,
    load_key,
)

log = logging.getLogger("streamwarden")


def _open_box(db: Database, key_path: Path) -> SecretBox:
    """The existing key, or a new one when no stored row needs the old one."""
    if key_path.exists():
        return SecretBox(load_key(key_path))
    encrypted = [sid for sid, text in db.streams() if is_encrypted(text)]
    if encrypted:
        raise SecretKeyError(
            f"the secret key file {key_path} is missing, but the database {db.path} holds "
            f"{len(encrypted)} encrypted stream(s) added through the API "
            f"({', '.join(encrypted[:5])}{', ...' if len(encrypted) > 5 else ''}); restore the "
            "key file from a backup (or point [app] secret_key_file at it). Nothing was changed; "
            "to give those streams up instead, delete them from the database's streams table")
    try:
        return SecretBox(create_key(key_path))
    except FileExistsError:  # created by someone else in between: use that one
        return SecretBox(load_key(key_path))
    except OSError as exc:
        raise SecretKeyError(f"cannot create the secret key file {key_path}: {exc.strerror} "
                             "(set [app] secret_key_file to a writable place)") from None


class StreamStore:
    def __init__(self, db: Database, box: SecretBox):
        self.db = db
        self._box = box

    @classmethod
    def open(cls, db: Database, key_path: Path) -> StreamStore:
        """Check every row against the key and encrypt plain rows; SecretKeyError if a row
        cannot be read with this key (nothing is written then)."""
        store = cls(db, _open_box(db, key_path))
        rows = db.streams()
        unreadable = [sid for sid, text in rows
                      if is_encrypted(text) and store._decrypt(text) is None]
        if unreadable:
            raise SecretKeyError(
                f"the secret key file {key_path} cannot decrypt stream(s) "
                f"{', '.join(unreadable)} stored in {db.path}: it is not the key they were "
                "written with; restore the right key file. Nothing was changed")
        plain = [(sid, text) for sid, text in rows if not is_encrypted(text)]
        if plain:
            db.replace_streams([(sid, store._box.encrypt(text)) for sid, text in plain])
            log.info("encrypted %d stream(s) stored in plain text by an older version",
                     len(plain), extra={"event": "streams_encrypted", "count": len(plain)})
        return store

    def _decrypt(self, stored: str) -> str | None:
        try:
            return self._box.decrypt(stored)
        except InvalidToken:
            return None

    def save(self, stream_id: str, config_json: str) -> None:
        self.db.save_stream(stream_id, self._box.encrypt(config_json))

    def delete(self, stream_id: str) -> None:
        self.db.delete_stream(stream_id)

    def streams(self) -> list[tuple[str, str]]:
        """(id, config JSON) of every stored stream, decrypted, in id order."""
        out = []
        for stream_id, stored in self.db.streams():
            text = self._decrypt(stored) if is_encrypted(stored) else stored
            if text is None:
                log.error("stream %s stored in the database cannot be decrypted; skipped "
                          "(the row is kept)", stream_id, extra={"stream_id": stream_id})
                continue
            out.append((stream_id, text))
        return out
