"""A config as it may be shown: URIs redacted, passwords, tokens and secrets masked.

`GET /config` shows the effective config; it must not hand out what the file keeps secret.
Redaction goes by key name, so sections other parts of the service add later (webhook URLs,
users' hashes) are covered without a list to keep up to date: a key whose name ends in
`password`, `token`, `secret`, `passphrase` or `hash` is masked, and a `uri`/`url` (or a
list of them) is shown through `uris.redact_uri` (a password in the userinfo, a token in the
query).
"""

from __future__ import annotations

import re
from typing import Any

from streamwarden.uris import redact_uri

MASK = "***"
_SECRET = re.compile(r"(?i)(password|passwd|passphrase|token|secret|hash)$")
_URI = re.compile(r"(?i)(^|_)(uri|url)s?$")


def redact(value: Any, key: str = "") -> Any:
    """A copy of JSON-like `value` (dicts, lists, scalars) with every secret hidden."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, key) for item in value]
    if value is None or isinstance(value, bool):
        return value
    if _SECRET.search(key):
        return MASK
    if isinstance(value, str) and _URI.search(key):
        return redact_uri(value)
    return value
