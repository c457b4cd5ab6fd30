"""Login sessions and the signed URL tokens derived from them.

A login opens a session: a random bearer token (256 bits) that expires after `ttl` and ends
at logout. Sessions live in this process's memory only, keyed by a digest of the token (the
token itself is never stored): a restart logs everyone out, and nothing on disk can be stolen
to impersonate a user.

Browsers cannot put a header on `<video src>`, `<img>` or `new WebSocket()`, so a session (or
the API token) asks for a URL token bound to one path: `EXPIRES.SID.MAC`, where SID names the
session (a digest, not its secret) and MAC is HMAC-SHA256 over path, expiry and SID, keyed by
a random per-process key. A URL token is only as good as its session: it stops working at
logout or when the session expires, and never outlives it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from streamwarden.users.permissions import Principal

TOKEN_SID = "token"  # the session id URL tokens of the API token carry
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class Session:
    sid: str
    principal: Principal
    expires: float  # Unix time

    def remaining(self, now: float) -> float:
        return max(0.0, self.expires - now)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.time,
                 max_sessions: int = MAX_SESSIONS):
        self.ttl = ttl
        self._clock = clock
        self._max = max_sessions
        self._by_digest: dict[str, Session] = {}
        self._by_sid: dict[str, str] = {}

    def open(self, principal: Principal) -> tuple[str, Session]:
        """A new session for `principal`: its bearer token (shown once) and the session."""
        self._purge()
        while len(self._by_digest) >= self._max:  # the one closest to expiry makes room
            oldest = min(self._by_digest.values(), key=lambda s: s.expires)
            self._drop(oldest.sid)
        token = secrets.token_urlsafe(32)
        digest = _digest(token)
        session = Session(digest[:32], principal, self._clock() + self.ttl)
        self._by_digest[digest] = session
        self._by_sid[session.sid] = digest
        return token, session

    def find(self, token: str) -> Session | None:
        """The live session a bearer token opens, or None (unknown, expired or closed)."""
        return self._live(self._by_digest.get(_digest(token)))

    def by_sid(self, sid: str) -> Session | None:
        digest = self._by_sid.get(sid)
        return self._live(self._by_digest.get(digest)) if digest is not None else None

    def close(self, sid: str) -> None:
        self._drop(sid)

    def close_user(self, name: str) -> int:
        """End every session of `name` (a user removed or re-passworded); how many ended."""
        sids = [s.sid for s in self._by_digest.values() if s.principal.name == name]
        for sid in sids:
            self._drop(sid)
        return len(sids)

    def __len__(self) -> int:
        return len(self._by_digest)

    def _live(self, session: Session | None) -> Session | None:
        if session is None:
            return None
        if session.expires <= self._clock():
            self._drop(session.sid)
            return None
        return session

    def _drop(self, sid: str) -> None:
        digest = self._by_sid.pop(sid, None)
        if digest is not None:
            self._by_digest.pop(digest, None)

    def _purge(self) -> None:
        now = self._clock()
        for session in [s for s in self._by_digest.values() if s.expires <= now]:
            self._drop(session.sid)


class UrlSigner:
    """Signs and checks path-bound URL tokens (see the module's docstring)."""

    def __init__(self, key: bytes | None = None, clock: Callable[[], float] = time.time):
        self._key = key or secrets.token_bytes(32)
        self._clock = clock

    def _mac(self, path: str, expires: int, sid: str) -> str:
        mac = hmac.new(self._key, f"{path}|{expires}|{sid}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def sign(self, path: str, sid: str, expires: float) -> str:
        whole = int(expires)
        return f"{whole}.{sid}.{self._mac(path, whole, sid)}"

    def check(self, path: str, token: str) -> str | None:
        """The session id a valid, unexpired token for `path` carries; None otherwise.

        The MAC is compared in constant time, and a malformed token costs the same HMAC as a
        well-formed one, so a refusal says nothing about which part was wrong."""
        expires_text, _, rest = token.partition(".")
        sid, _, mac = rest.partition(".")
        expires = int(expires_text) if expires_text.isdigit() and len(expires_text) < 16 else 0
        valid = hmac.compare_digest(self._mac(path, expires, sid).encode(), mac.encode())
        return sid if valid and expires >= self._clock() and sid else None
