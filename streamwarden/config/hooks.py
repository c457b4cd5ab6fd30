"""`[hooks]` and `[[webhooks]]`: commands and URLs told when something happens to a stream.

Hook commands are set in the config file only, never through the API (a stream added through
the API cannot carry one): whoever can edit the file can already run commands on the machine,
an API client must not. So per-stream overrides sit in `[hooks.streams.<id>]`, not in
`[[streams]]` (whose fields are also the API's request body); they may name an API-added
stream too.

A command is a list, the program and its arguments, run without a shell. A program that
cannot be found is an error at load time where that can be known (a path that is not an
executable file; a bare name not on PATH), so a typo is found when the file is loaded and
not at 3 a.m. when the disk fills.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from streamwarden.config.durations import Duration
from streamwarden.hooks.triggers import HOOK_NAMES
from streamwarden.ids import validate_stream_id

_COMMAND_HELP = ('a hook command is a list: the program, then its arguments, such as '
                 '["/usr/local/bin/upload", "--fast"] (no shell: write ["sh", "-c", "..."] '
                 'for one)')

HookName = Literal["stream_ready", "stream_lost", "stream_failed", "segment_complete",
                   "event_start", "event_update", "event_end", "disk_full", "disk_full_end"]
assert get_args(HookName) == HOOK_NAMES  # one list of names


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _as_list(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(_COMMAND_HELP)
    return value


def program_problem(program: str, path: str | None = None) -> str | None:
    """Why `program` (a command's first word) cannot be run, or None if it can.

    A name with a slash is a path (relative ones to the service's working directory); a bare
    name is looked up on PATH (`path`, by default the service's own), as the runner will.
    """
    if not program:
        return "the program (the command's first item) is empty"
    if "/" in program:
        file = Path(program)
        if not file.exists():
            return f"{program!r} does not exist"
        if not file.is_file() or not os.access(file, os.X_OK):
            return f"{program!r} is not an executable file"
        return None
    search = path if path is not None else os.environ.get("PATH", os.defpath)
    if shutil.which(program, path=search) is None:
        return f"{program!r} is not on PATH ({search}); give its full path"
    return None


def _runnable(command: list[str]) -> list[str]:
    if command and (problem := program_problem(command[0])):
        raise ValueError(problem)
    return command


# An empty list means "no command" (in `[hooks.streams.<id>]`: none for this stream).
HookCommand = Annotated[list[str], BeforeValidator(_as_list), AfterValidator(_runnable)]


class HookCommands(_Section):
    """One optional command per trigger; see streamwarden/hooks/triggers.py for when each runs."""

    on_stream_ready: HookCommand | None = None
    on_stream_lost: HookCommand | None = None
    on_stream_failed: HookCommand | None = None
    on_segment_complete: HookCommand | None = None
    on_event_start: HookCommand | None = None
    on_event_update: HookCommand | None = None
    on_event_end: HookCommand | None = None
    on_disk_full: HookCommand | None = None
    on_disk_full_end: HookCommand | None = None


StreamKey = Annotated[str, AfterValidator(validate_stream_id)]


class HooksSection(HookCommands):
    timeout: Duration = 60.0  # a run still going after this is killed, its process group too
    max_concurrent: int = Field(default=4, ge=1, le=64)  # runs at once, all hooks together
    queue: int = Field(default=100, ge=0, le=10_000)  # runs waiting; more are dropped
    log_lines: int = Field(default=20, ge=0, le=10_000)  # output lines logged per run
    streams: dict[StreamKey, HookCommands] = {}

    @model_validator(mode="after")
    def _positive_timeout(self) -> HooksSection:
        if self.timeout <= 0:
            raise ValueError("timeout must be greater than 0")
        return self

    def command(self, hook: str, stream_id: str) -> list[str] | None:
        """The command for `hook` on `stream_id`: the stream's own if it sets one (an empty
        list: none), else the global one."""
        key = f"on_{hook}"
        own = self.streams.get(stream_id)
        if own is not None and key in own.model_fields_set:
            command = getattr(own, key)
        else:
            command = getattr(self, key)
        return command or None

    @property
    def configured(self) -> bool:
        """Whether any command is set anywhere (no runner is built otherwise)."""
        sections = (self, *self.streams.values())
        return any(getattr(s, f"on_{hook}") for s in sections for hook in HOOK_NAMES)


def _webhook_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises for a bad port)
    except ValueError as exc:
        raise ValueError(f"the URL cannot be parsed: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        shown = parts.scheme or "(none)"
        raise ValueError(f"a webhook URL must be http:// or https://, not {shown!r}")
    if not parts.hostname:
        raise ValueError("a webhook URL needs a host: https://host[:port]/path")
    if any(ch.isspace() for ch in value):
        raise ValueError("the URL contains spaces")
    return value


WebhookUrl = Annotated[str, AfterValidator(_webhook_url)]


class WebhookSection(_Section):
    url: WebhookUrl
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")
    events: list[HookName] = Field(default_factory=lambda: list(get_args(HookName)),
                                   min_length=1)
    streams: list[StreamKey] | None = None  # None: every stream
    secret: str | None = Field(default=None, min_length=16)  # signs each body (HMAC-SHA256)
    timeout: Duration = 10.0  # per request
    max_attempts: int = Field(default=10, ge=1, le=1000)
    backoff: Duration = 1.0  # before the first retry, doubling per retry
    max_backoff: Duration = 300.0
    queue: int = Field(default=1000, ge=1, le=100_000)  # deliveries waiting; more are dropped

    @model_validator(mode="after")
    def _times(self) -> WebhookSection:
        if self.timeout <= 0 or self.backoff <= 0:
            raise ValueError("timeout and backoff must be greater than 0")
        if self.max_backoff < self.backoff:
            raise ValueError("max_backoff cannot be less than backoff")
        return self

    @property
    def label(self) -> str:
        """What logs and metrics call it: its `name`, else its host (never the path or query,
        which often carry a token)."""
        return self.name or (urlsplit(self.url).hostname or "?")

    @property
    def shown_url(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/…"


def unique_webhook_labels(webhooks: list[WebhookSection]) -> None:
    seen: dict[str, int] = {}
    for index, webhook in enumerate(webhooks):
        if webhook.label in seen:
            raise ValueError(f"webhooks[{index}] and webhooks[{seen[webhook.label]}] are both "
                             f"called {webhook.label!r} (in logs and metrics): give each a "
                             "distinct `name`")
        seen[webhook.label] = index
