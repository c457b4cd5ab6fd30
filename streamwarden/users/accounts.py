"""The users the service knows (from the users file) and how a name and password are checked.

An unknown name costs the same argon2id verification as a wrong password (against a hash of
a random password made at start-up), so neither the answer nor its timing tells whether a
user exists.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from streamwarden.users.passwords import HashParams, Passwords
from streamwarden.users.permissions import Principal
from streamwarden.users.userfile import UserRecord, read_users


class Accounts:
    def __init__(self, users: Mapping[str, UserRecord], params: HashParams):
        self.users = dict(users)
        self.passwords = Passwords(params)
        self._dummy = self.passwords.hash(secrets.token_urlsafe(16)) if self.users else ""

    @classmethod
    def load(cls, path: Path | str | None, params: HashParams,
             minimum: HashParams) -> Accounts:
        """The users of `path` (none when no users file is configured); UsersFileError if
        the file is missing, malformed, or holds a weak hash."""
        return cls(read_users(path, minimum) if path else {}, params)

    def __bool__(self) -> bool:
        return bool(self.users)

    def authenticate(self, name: str, password: str) -> Principal | None:
        """The user's principal if the password is theirs; None for a wrong password and an
        unknown name alike. Blocks for one argon2id verification: call off the event loop."""
        record = self.users.get(name)
        stored = record.password_hash if record is not None else self._dummy
        matches = bool(stored) and self.passwords.verify(stored, password)
        return record.principal() if record is not None and matches else None

    def principal(self, name: str) -> Principal | None:
        record = self.users.get(name)
        return record.principal() if record is not None else None
