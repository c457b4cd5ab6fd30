"""Camera URIs: which ones we accept, and how they may be shown.

A URI may carry credentials (a password in the userinfo, a token or passphrase in the query),
so nothing shows a stream's URI as it is: logs and API answers show its redacted form, and
messages from GStreamer (which quote the URI, or a password inside it) are scrubbed first.
A stream computes its `DisplayUri` once when it is created; nothing redacts per log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

NETWORK_SCHEMES = ("rtsp", "rtsps", "rtspt", "rtmp", "rtmps", "srt", "http", "https")
SUPPORTED_SCHEMES = (*NETWORK_SCHEMES, "file")


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


@dataclass(frozen=True)
class DisplayUri:
    """A stream's URI as it may be shown, with what must be scrubbed from messages about it.

    Built once per stream (`DisplayUri.of(config.uri)`): the redaction parses the URI and runs
    regular expressions, which is not what a log line should pay for every time.
    """

    text: str
    _uri: str = field(repr=False)
    _secrets: tuple[str, ...] = field(repr=False)

    @classmethod
    def of(cls, uri: str) -> DisplayUri:
        return cls(redact_uri(uri), uri, tuple(uri_secrets(uri)))

    def scrub(self, message: str) -> str:
        """`message` with the URI and its secrets replaced (like `scrub`, precomputed)."""
        if not message:
            return message
        message = message.replace(self._uri, self.text)
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message

    def __str__(self) -> str:
        return self.text
