"""Password hashes: argon2id (argon2-cffi), and which stored hashes are acceptable.

Only argon2id is accepted: a plain-text password, another scheme (bcrypt, crypt's SHA-512,
argon2i/argon2d) or argon2id with parameters below the configured minimum is refused at
start-up by name, so a weak entry can never sit unnoticed in the users file. New hashes use
the configured parameters (argon2-cffi's defaults, RFC 9106's low-memory profile); tests
lower them through configuration, never by changing the defaults.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8
MIN_SALT_BYTES = 8
MIN_HASH_BYTES = 16


@dataclass(frozen=True)
class HashParams:
    """argon2id's cost: iterations, memory in KiB, lanes."""

    time_cost: int
    memory_kib: int
    parallelism: int

    def weaker_than(self, other: HashParams) -> bool:
        return (self.time_cost < other.time_cost or self.memory_kib < other.memory_kib
                or self.parallelism < other.parallelism)

    def __str__(self) -> str:
        return f"m={self.memory_kib} KiB, t={self.time_cost}, p={self.parallelism}"


class Passwords:
    """Hash and verify with one set of parameters."""

    def __init__(self, params: HashParams):
        self.params = params
        self._hasher = PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_kib,
                                      parallelism=params.parallelism, type=Type.ID)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        """Whether `password` matches `stored` (argon2-cffi compares in constant time)."""
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if password != password.strip() or "\n" in password:
        return "a password may not start or end with white space"
    return None


def hash_problem(stored: str, minimum: HashParams) -> str | None:
    """Why a stored hash is not accepted (weak or malformed), or None. Never quotes it."""
    if not stored.startswith("$"):
        return "is not a password hash (it looks like a plain-text password)"
    if not stored.startswith("$argon2"):
        scheme = stored[1:].split("$", 1)[0] or "?"
        return f"uses the scheme ${scheme}$, which is not accepted (only argon2id)"
    try:
        found = extract_parameters(stored)
    except InvalidHashError:
        return "is a malformed argon2 hash"
    if found.type is not Type.ID:
        return f"is an argon2{found.type.name.lower()} hash; only argon2id is accepted"
    if not _well_formed_tail(stored):
        return "is a malformed argon2 hash (its salt or digest is missing or too short)"
    params = HashParams(found.time_cost, found.memory_cost, found.parallelism)
    if params.weaker_than(minimum):
        return f"is weaker ({params}) than [users] min_hash ({minimum})"
    return None


def _well_formed_tail(stored: str) -> bool:
    """The salt and digest fields exist, decode, and are long enough to mean something."""
    parts = stored.split("$")
    if len(parts) != 6:
        return False
    try:
        salt, digest = (base64.b64decode(p + "=" * (-len(p) % 4), validate=True)
                        for p in parts[4:])
    except (binascii.Error, ValueError):
        return False
    return len(salt) >= MIN_SALT_BYTES and len(digest) >= MIN_HASH_BYTES
