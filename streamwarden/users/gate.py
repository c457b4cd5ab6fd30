"""From credentials to a caller: the API token, a login session, or a signed URL token.

The API token (`[api] token`) is an admin with no session of its own; a login's bearer token
finds its session; a URL token names a session (or the API token) and a path. Whatever fails
yields None, and the API answers every such request alike (401, one sentence), so a refusal
never tells which part was wrong. Comparisons with secrets are constant-time.
"""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass

from streamwarden.users.permissions import EVERYONE, Principal
from streamwarden.users.sessions import TOKEN_SID, Session, Sessions, UrlSigner

TOKEN_ADMIN = Principal("token", "admin")
FOREVER = math.inf


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, and the session a URL token of theirs would be bound to."""

    principal: Principal
    sid: str | None  # None: no session (an open API, a public path): no URL tokens
    expires: float = FOREVER

    @classmethod
    def of(cls, session: Session) -> Caller:
        return cls(session.principal, session.sid, session.expires)


ANONYMOUS = Caller(EVERYONE, None)


class Gate:
    def __init__(self, token: str | None, sessions: Sessions, signer: UrlSigner,
                 users_enabled: bool):
        self.token = token
        self.sessions = sessions
        self.signer = signer
        self.enabled = bool(token) or users_enabled

    def from_header(self, header: str | None) -> Caller | None:
        """The caller an `Authorization: Bearer ...` header names, or None."""
        scheme, _, value = (header or "").partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            return None
        if self.token and hmac.compare_digest(value.encode(), self.token.encode()):
            return Caller(TOKEN_ADMIN, TOKEN_SID)
        session = self.sessions.find(value)
        return Caller.of(session) if session is not None else None

    def from_url_token(self, path: str, token: str) -> Caller | None:
        sid = self.signer.check(path, token)
        if sid is None:
            return None
        if sid == TOKEN_SID:
            return Caller(TOKEN_ADMIN, TOKEN_SID) if self.token else None
        session = self.sessions.by_sid(sid)
        return Caller.of(session) if session is not None else None

    def url_token(self, caller: Caller, path: str, ttl: float, now: float) -> tuple[str, float]:
        """A URL token for `path` on behalf of `caller`, and its lifetime in seconds: never
        longer than the caller's session."""
        if caller.sid is None:
            raise ValueError("a caller without a session cannot sign URLs")
        expires = min(now + ttl, caller.expires)
        return self.signer.sign(path, caller.sid, expires), max(0.0, expires - now)
