"""Reloading the config file while the service runs: validate, plan, apply only the changes.

Three ways in, one way through (asyncio thread, one reload at a time): `POST /config/reload`,
SIGHUP (the signal handler only schedules the reload on the asyncio loop) and, with
`[app] watch_config = true`, a change of the file's content noticed by a one-second poll
(`config/watch.py`). The new file is validated first; if anything is wrong, nothing changes
and every problem is reported with its line (the API's 422, a log line for the others).
Otherwise `config/diff.py` plans the changes and they are applied: the service takes the
global keys it can (`adopt`, see Service.adopt_config), then the streams are removed, taken
over, restarted, changed in place and added through the `StreamManager`, which runs every
pipeline change and feature hook on the GStreamer thread. One stream's failure (a model that
does not load) is reported and does not stop the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from streamwarden.config.diff import ReloadPlan, RunningStream, StreamChange, plan_reload
from streamwarden.config.loader import ConfigError, config_warnings
from streamwarden.config.watch import FileWatch
from streamwarden.ingest.registry import StreamExistsError, StreamNotFoundError

if TYPE_CHECKING:
    from streamwarden.config.model import Config
    from streamwarden.config.source import ConfigFile
    from streamwarden.manager import StreamManager

log = logging.getLogger("streamwarden.reload")

WATCH_INTERVAL = 1.0  # seconds between two looks at the file (one stat each)


@dataclass(frozen=True)
class ReloadReport:
    """What a reload did: shown by `GET /config` (the last one) and answered by the API."""

    time: float  # Unix time it finished
    trigger: str  # "api", "signal" or "watch"
    ok: bool
    applied: tuple[str, ...] = ()
    needs_restart: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


class NoConfigFileError(Exception):
    """The service was started without a config file: there is nothing to reload."""


class ReloadRefusedError(Exception):
    """The new file is not valid; the running config stays. Carries every problem."""

    def __init__(self, error: ConfigError, report: ReloadReport):
        super().__init__(str(error))
        self.error = error
        self.report = report


def _failure(change: StreamChange, exc: Exception) -> str:
    if isinstance(exc, StreamNotFoundError):
        reason = "it was removed meanwhile"
    elif isinstance(exc, StreamExistsError):
        reason = "a stream with this id was added meanwhile"
    else:
        reason = str(exc) or type(exc).__name__
    return f"stream {change.stream_id}: {change.action} failed: {reason}"


class Reloader:
    """Runs reloads for the service; holds no reference back to it (only what it is given)."""

    def __init__(self, source: ConfigFile | None, manager: StreamManager,
                 current: Callable[[], Config],
                 adopt: Callable[[Config, ReloadPlan], Awaitable[None]]):
        self.source = source
        self.manager = manager
        self._current = current  # the config the service runs with now
        self._adopt = adopt  # the service takes a new config's global keys
        self.last: ReloadReport | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()
        self._watch: FileWatch | None = None
        # In a cluster the file's streams go to the shared camera list (the owners apply
        # them), never straight to this node's manager: set by the service.
        self.cluster_streams: Callable[[list], Awaitable[tuple[str, ...]]] | None = None
        if source is not None:
            self._watch = FileWatch(source.path)
            with contextlib.suppress(ConfigError):  # what start-up loaded (near enough)
                self._watch.loaded(source.read())

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The asyncio loop that runs reloads (set at start-up)."""
        self._loop = loop

    async def stop(self) -> None:
        """At shutdown: a reload asked for by a signal does not outlive the service."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- triggers --------------------------------------------------------------------------

    def request(self, trigger: str) -> None:
        """Schedule a reload from any thread, also from a signal handler; never blocks."""
        loop = self._loop
        if loop is None:
            log.warning("config reload (%s) asked for before start-up finished; ignored",
                        trigger)
            return
        loop.call_soon_threadsafe(self._spawn, trigger)

    def _spawn(self, trigger: str) -> None:
        task = asyncio.create_task(self.reload_logged(trigger), name=f"reload-{trigger}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload_logged(self, trigger: str) -> None:
        """A reload whose outcome only goes to the log (SIGHUP, the watch)."""
        try:
            await self.reload(trigger)
        except NoConfigFileError:
            log.warning("config reload (%s): the service was started without a config file; "
                        "nothing to reload", trigger)
        except ReloadRefusedError:
            pass  # logged with every problem by reload()
        except Exception:  # a bug must not end the watch or leave a task's error unseen
            log.exception("config reload (%s) failed", trigger)

    async def watch(self) -> None:
        """While `[app] watch_config` is on: reload when the file's content changes."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            if self._watch is not None and self._current().app.watch_config \
                    and self._watch.poll():
                await self.reload_logged("watch")

    # ---- the reload ------------------------------------------------------------------------

    async def reload(self, trigger: str) -> ReloadReport:
        """Validate the file, then apply what changed; ReloadRefusedError if it is not valid."""
        if self.source is None:
            raise NoConfigFileError()
        async with self._lock:
            new = await self._load(trigger)
            for warning in config_warnings(new):
                log.warning("config reload: %s", warning)
            running = {s.id: RunningStream(s.origin, s.config, s.settings)
                       for s in self.manager.all()}
            plan = plan_reload(self._current(), new, running)
            await self._adopt(plan.config, plan)
            if self.cluster_streams is not None:
                changes = await self.cluster_streams(list(new.streams))
                errors: list[str] = []
            else:
                changes = tuple(c.describe() for c in plan.streams)
                errors = [error for change in plan.streams
                          if (error := await self._apply(change)) is not None]
            report = ReloadReport(
                time.time(), trigger, not errors, changes + plan.applied,
                plan.needs_restart, tuple(errors))
            self.last = report
            self._log(report)
            return report

    async def _load(self, trigger: str) -> Config:
        assert self.source is not None
        source = self.source
        try:
            text = await asyncio.to_thread(source.read)
            if self._watch is not None:
                self._watch.loaded(text)
            return source.parse(text)
        except ConfigError as exc:
            issues = sorted(exc.issues, key=lambda i: i.line or 0)
            lines = tuple(issue.format(exc.source) for issue in issues)
            report = ReloadReport(time.time(), trigger, False, errors=lines)
            self.last = report
            log.error("config reload (%s) refused, the running config is unchanged: "
                      "%d problem(s):\n  %s", trigger, len(lines), "\n  ".join(lines),
                      extra={"event": "config_reload_refused", "problems": list(lines)})
            raise ReloadRefusedError(exc, report) from None

    async def _apply(self, change: StreamChange) -> str | None:
        """One stream's change; the reason it failed, or None."""
        manager = self.manager
        try:
            if change.action == "remove":
                await manager.remove(change.stream_id)
            elif change.config is None:
                raise ValueError("no definition")
            elif change.action == "add":
                await manager.add(change.config, "config")
            elif change.action == "update":
                await manager.change(change.stream_id, change.config)
            else:  # restart, replace: the stream is removed and built again from the file
                if change.action == "replace":
                    log.warning("stream %s: the config file's definition replaces the stream "
                                "added through the API", change.stream_id,
                                extra={"stream_id": change.stream_id, "event": "config_wins"})
                await manager.replace(change.config, "config")
        except Exception as exc:
            failure = _failure(change, exc)
            log.error("config reload: %s", failure, extra={"stream_id": change.stream_id})
            return failure
        return None

    def _log(self, report: ReloadReport) -> None:
        applied = "; ".join(report.applied) or "nothing changed"
        log.info("config reloaded (%s): %s", report.trigger, applied,
                 extra={"event": "config_reloaded", "applied": list(report.applied)})
        if report.needs_restart:
            log.warning("config reload: these changes take effect only after a restart: %s",
                        ", ".join(report.needs_restart),
                        extra={"event": "config_needs_restart",
                               "needs_restart": list(report.needs_restart)})
