"""RTSP readers authenticate against the service's users (and the `[restream]` user).

GstRtspServer's own Basic auth wants every password in clear; the users file holds argon2id
hashes. So `authenticate` is ours: it reads the request's `Authorization: Basic` header,
checks the name and password against the users (or the single `[restream] user`, compared
in constant time) and hands the server a token whose role names the reader. Each stream's
mount then allows the roles that may read it (`permissions_for`): every user whose role may
view, limited by its stream list. The server answers the rest itself: 401 with a Basic
challenge for missing or wrong credentials, 404 for a mount the reader may not see (the
same as one that does not exist).

Runs on the GStreamer thread (the RTSP server's context), so the cost matters: a verified
name and password are remembered for `restream_credentials_ttl` (by a digest of the header,
never the password), so argon2id runs once per reader per period, not per request; failures
slow the reader's address down (users/backoff.py) and, while it waits, its requests are
refused without any hashing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from streamwarden.gst.init import GstRtsp, GstRtspServer
from streamwarden.users.backoff import BackoffPolicy, LoginBackoff
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.users.accounts import Accounts

log = logging.getLogger("streamwarden.restream")

LEGACY_ROLE = "reader"  # the one `[restream] user`: every stream
MAX_REMEMBERED = 1000


def user_role(name: str) -> str:
    return f"user:{name}"


class ReaderAuth(GstRtspServer.RTSPAuth):
    def __init__(self, accounts: Accounts, legacy: tuple[str, str] | None, remember_s: float,
                 policy: BackoffPolicy, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._accounts = accounts
        self._legacy = legacy
        self._remember_s = remember_s
        self._clock = clock
        self._remembered: dict[str, tuple[str, float]] = {}  # header digest → role, until
        self.backoff = LoginBackoff(policy, clock)

    def permissions_for(self, stream_id: str) -> GstRtspServer.RTSPPermissions:
        """Who may read `stream_id`: the `[restream]` user, and users who may view it."""
        permissions = GstRtspServer.RTSPPermissions()
        roles = [LEGACY_ROLE] if self._legacy else []
        roles += [user_role(name) for name, record in self._accounts.users.items()
                  if record.principal().may(Action.VIEW) and record.principal().sees(stream_id)]
        for role in roles:
            permissions.add_permission_for_role(role, "media.factory.access", True)
            permissions.add_permission_for_role(role, "media.factory.construct", True)
        return permissions

    def do_authenticate(self, ctx: GstRtspServer.RTSPContext) -> bool:
        """Give the request a token if its credentials are right; without one the server
        answers 401 with a Basic challenge. Always True: refusing is the server's job."""
        _, header = ctx.request.get_header(GstRtsp.RTSPHeaderField.AUTHORIZATION, 0)
        role = self._role(header or "", ctx.conn.get_ip() or "?")
        if role is not None:
            token = GstRtspServer.RTSPToken()
            token.set_string("media.factory.role", role)
            ctx.set_token(token)
        return True

    def _role(self, header: str, address: str) -> str | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value.strip():
            return None
        digest = hashlib.sha256(value.strip().encode()).hexdigest()
        now = self._clock()
        remembered = self._remembered.get(digest)
        if remembered is not None and remembered[1] > now:
            return remembered[0]
        if self.backoff.attempt(address) > 0:
            return None
        role = self._check(value.strip())
        if role is None:
            log.info("restream: a reader from %s gave wrong credentials", address,
                     extra={"event": "restream_auth_failed"})
            return None
        self.backoff.succeeded(address)
        if len(self._remembered) >= MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[digest] = (role, now + self._remember_s)
        return role

    def _check(self, encoded: str) -> str | None:
        try:
            name, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if not sep:
            return None
        if self._legacy is not None and hmac.compare_digest(
                f"{name}:{password}".encode(), ":".join(self._legacy).encode()):
            return LEGACY_ROLE
        principal = self._accounts.authenticate(name, password)
        if principal is None or not principal.may(Action.VIEW):
            return None
        return user_role(principal.name)
