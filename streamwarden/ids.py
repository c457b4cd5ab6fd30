"""Validation of the two user strings that reach paths, pipelines and logs: ids and URIs.

A stream id becomes a directory name and an element name, so it is checked against one strict
pattern before it is used anywhere. A URI may carry credentials; `redact_uri` is what every
log line and API response shows instead of the URI itself.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

STREAM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_STREAM_ID = re.compile(STREAM_ID_PATTERN)
STREAM_ID_HELP = "1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtspt", "rtmp", "rtmps", "srt", "http", "https")
SUPPORTED_SCHEMES = (*NETWORK_SCHEMES, "file")


def is_valid_stream_id(value: str) -> bool:
    return isinstance(value, str) and bool(_STREAM_ID.match(value))


def validate_stream_id(value: str) -> str:
    if not isinstance(value, str) or not _STREAM_ID.match(value):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        raise ValueError(f"{shown!r} is not a valid stream id: use {STREAM_ID_HELP}")
    return value


def validate_uri(value: str) -> str:
    """Accept only schemes we can ingest, with a host (network) or an absolute path (file)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("the URI is empty")
    if any(ch.isspace() for ch in value) or any(ord(ch) < 32 for ch in value):
        raise ValueError("the URI contains spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"the URI cannot be parsed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        shown = scheme or "(none)"
        raise ValueError(
            f"unsupported URI scheme {shown!r}: use one of {', '.join(SUPPORTED_SCHEMES)}"
        )
    if scheme == "file":
        if not parts.path.startswith("/") or parts.netloc not in ("", "localhost"):
            raise ValueError("a file URI needs an absolute path: file:///path/to/video.mp4")
    elif not parts.hostname and not (scheme == "srt" and port):
        raise ValueError(f"a {scheme} URI needs a host: {scheme}://host[:port]/path")
    return value


def redact_uri(uri: str) -> str:
    """The URI with its password (and any secret query value) replaced by '***'."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable uri>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if user else f"***@{host}"
    query = re.sub(
        r"(?i)\b(passphrase|password|passwd|pass|token|key|secret)=[^&]*", r"\1=***", parts.query
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def uri_secrets(uri: str) -> list[str]:
    """The secret substrings of a URI, so messages from GStreamer can be scrubbed of them."""
    secrets: list[str] = []
    try:
        parts = urlsplit(uri)
    except ValueError:
        return secrets
    if parts.password:
        secrets.append(parts.password)
    for match in re.finditer(
        r"(?i)\b(?:passphrase|password|passwd|pass|token|key|secret)=([^&]+)", parts.query
    ):
        secrets.append(match.group(1))
    return [s for s in secrets if s]


def scrub(text: str, uri: str) -> str:
    """Replace the URI and its secrets in free text (error messages) by the redacted form."""
    if not text:
        return text
    text = text.replace(uri, redact_uri(uri))
    for secret in uri_secrets(uri):
        text = text.replace(secret, "***")
    return text
