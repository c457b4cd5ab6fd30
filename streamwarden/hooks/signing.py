"""Webhook signatures: HMAC-SHA256 of the exact body bytes with the webhook's secret.

The header is `X-Streamwarden-Signature: sha256=<hex digest>`. A receiver recomputes the
digest over the raw body it received (before parsing the JSON) and compares in constant time;
`verify` is that check, and docs/configuration.md shows it for receivers.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Streamwarden-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-Streamwarden-Event"
ATTEMPT_HEADER = "X-Streamwarden-Attempt"


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `body` with `secret` (constant time)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)
