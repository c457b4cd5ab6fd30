"""The camera list as stored in PostgreSQL: each stream's JSON encrypted with the cluster's
shared key (the same Fernet key file on every node, `[app] secret_key_file`), and an HMAC of
the plain JSON under that key, so loading the same file again changes nothing and the digest
tells nothing about a password to whoever reads the table."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from streamwarden.cluster.store import CatalogRow
from streamwarden.config.model import StreamConfig
from streamwarden.secret_key import InvalidToken, SecretBox, create_key, load_key

log = logging.getLogger("streamwarden.cluster")


@dataclass(frozen=True)
class Entry:
    config: StreamConfig
    source: str   # config | api
    version: int


class Codec:
    def __init__(self, key: bytes):
        self._key = key
        self._box = SecretBox(key)

    @classmethod
    def open(cls, key_path: Path) -> Codec:
        """The shared key file; made here if missing (copy it to the other nodes)."""
        if not key_path.exists():
            with contextlib.suppress(FileExistsError):  # another process made it first
                create_key(key_path)
        return cls(load_key(key_path))

    def digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def seal(self, stream: StreamConfig) -> tuple[str, str]:
        """(encrypted JSON, digest) of a stream. Numbers as they are: the JSON mode's duration
        strings round to the millisecond, so a 0.1 ms setting would come back as 0 (invalid)."""
        text = json.dumps(stream.model_dump(mode="python"), separators=(",", ":"))
        return self._box.encrypt(text), self.digest(text)

    def open_row(self, row: CatalogRow) -> Entry | None:
        """The stream of a stored row; None (logged) when this node's key cannot read it or
        its JSON is no longer a valid stream."""
        try:
            text = self._box.decrypt(row.config)
        except InvalidToken:
            log.error("stream %s in the cluster's camera list cannot be decrypted: this node's "
                      "secret key file is not the cluster's; skipped", row.stream_id,
                      extra={"stream_id": row.stream_id})
            return None
        try:
            return Entry(StreamConfig.model_validate_json(text), row.source, row.version)
        except ValidationError as exc:
            reasons = "; ".join(str(e["msg"]) for e in exc.errors())
            log.error("stream %s in the cluster's camera list is not valid (%s); skipped",
                      row.stream_id, reasons, extra={"stream_id": row.stream_id})
            return None
