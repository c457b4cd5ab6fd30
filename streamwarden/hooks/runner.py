"""Hook commands: run for notifications, bounded in number, time and output.

A `Notifier` listener (asyncio thread): `handle` maps the message to triggers, looks up each
one's command and offers the run to the `RunQueue`; it never waits. Runs are asyncio
subprocesses, so nothing blocks a thread while a command works:

- the command is the configured list, run without a shell, in its own session (so its own
  process group), with the service's environment plus the trigger's `STREAMWARDEN_*`
  variables (triggers.py), stdin from /dev/null;
- its stdout and stderr lines are logged with the hook and stream, up to `log_lines` per run
  (output.py), the rest counted;
- past `timeout` its whole process group gets SIGTERM, and SIGKILL 2 s later;
- when its main process exits, whatever it left running in its process group is killed too,
  so a run is over when it says so and the concurrency limit means what it says (a command
  that must outlive its hook detaches itself, e.g. with `setsid`);
- failures (non-zero exit or a signal, timeout, program not found, another OS error) are
  logged and counted per hook for /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from streamwarden.config.hooks import HooksSection
from streamwarden.hooks.output import LineSplitter, OutputBudget
from streamwarden.hooks.runqueue import Offer, RunQueue
from streamwarden.hooks.triggers import Trigger, environment, triggers

log = logging.getLogger("streamwarden.hooks")

KILL_GRACE_S = 2.0  # between SIGTERM and SIGKILL at the timeout
OUTPUT_GRACE_S = 1.0  # for the pipes to close after the main process exited
FAILURE_REASONS = ("exit", "timeout", "not_found", "error")
_PIPES = {1: "stdout", 2: "stderr"}


@dataclass
class _Run:
    trigger: Trigger
    command: list[str]

    def __str__(self) -> str:
        return f"hook {self.trigger.hook} (stream {self.trigger.stream_id})"


class _Protocol(asyncio.SubprocessProtocol):
    """One run's process: its output lines as they come, its exit, its pipes closing."""

    def __init__(self, on_line: Callable[[str, str], None]):
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._on_line = on_line
        self._splitters = {fd: LineSplitter() for fd in _PIPES}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        for line in self._splitters[fd].feed(data):
            self._on_line(_PIPES[fd], line)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self._splitters:
            for line in self._splitters[fd].close():
                self._on_line(_PIPES[fd], line)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class HookRunner:
    def __init__(self, section: HooksSection, environ: Mapping[str, str] | None = None):
        self.section = section
        self._environ = environ  # None: the service's environment at the time of each run
        self._queue: RunQueue[_Run] = RunQueue(section.max_concurrent, section.queue)
        self.runs: Counter[str] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()  # (hook, reason)
        self.dropped: Counter[str] = Counter()
        self._tasks: set[asyncio.Task] = set()
        self._groups: set[int] = set()  # process groups of the runs going on
        self._closing = False  # nothing new is queued
        self._killing = False  # and whatever runs (or is only just starting) is killed

    # ---- asyncio thread: the notifier's listener ------------------------------------------

    def handle(self, message: dict[str, Any]) -> None:
        """A notification: queue the runs it triggers; never waits."""
        if self._closing:
            return
        for trigger in triggers(message):
            command = self.section.command(trigger.hook, trigger.stream_id)
            if command:
                self.submit(trigger, command)

    def submit(self, trigger: Trigger, command: list[str]) -> None:
        run = _Run(trigger, command)
        offer = self._queue.offer(run)
        if offer is Offer.START:
            self._start(run)
        elif offer is Offer.DROPPED:
            self.dropped[trigger.hook] += 1
            log.warning("%s not run: %d runs going and %d waiting already", run,
                        self._queue.running, self._queue.waiting,
                        extra={"stream_id": trigger.stream_id, "hook": trigger.hook,
                               "event": "hook_dropped"})

    def _start(self, run: _Run) -> None:
        task = asyncio.get_running_loop().create_task(self._run(run),
                                                      name=f"hook-{run.trigger.hook}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, run: _Run) -> None:
        try:
            await self._execute(run)
        except Exception:  # a bug here must not stop the next runs
            log.exception("%s: running it failed", run)
        finally:
            following = self._queue.finished()
            if following is not None:
                self._start(following)

    # ---- one run ---------------------------------------------------------------------------

    async def _execute(self, run: _Run) -> None:
        hook, started = run.trigger.hook, time.monotonic()
        self.runs[hook] += 1
        budget = OutputBudget(self.section.log_lines)
        env = {**(os.environ if self._environ is None else self._environ),
               **environment(run.trigger)}
        try:
            transport, protocol = await asyncio.get_running_loop().subprocess_exec(
                lambda: _Protocol(lambda pipe, line: self._output(run, budget, pipe, line)),
                *run.command, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=env, start_new_session=True)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            self._failed(run, "not_found", f"cannot run {run.command[0]!r}: {exc.strerror}")
            return
        except OSError as exc:
            self._failed(run, "error", f"cannot start {run.command[0]!r}: {exc}")
            return
        pgid = transport.get_pid()
        self._groups.add(pgid)
        if self._killing:  # started while the service was closing
            _signal_group(pgid, signal.SIGKILL)
        try:
            timed_out = await self._wait(protocol, pgid)
        finally:
            _signal_group(pgid, signal.SIGKILL)  # whatever it left behind
            with contextlib.suppress(TimeoutError):  # the output still in the pipes
                await asyncio.wait_for(asyncio.shield(protocol.closed), OUTPUT_GRACE_S)
            transport.close()
            self._groups.discard(pgid)
        self._finished(run, transport.get_returncode(), timed_out, budget,
                       time.monotonic() - started)

    async def _wait(self, protocol: _Protocol, pgid: int) -> bool:
        """Until the main process exits; True if it had to be killed at the timeout."""
        try:
            await asyncio.wait_for(asyncio.shield(protocol.exited), self.section.timeout)
        except TimeoutError:
            _signal_group(pgid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(protocol.exited), KILL_GRACE_S)
            except TimeoutError:
                _signal_group(pgid, signal.SIGKILL)
                await protocol.exited
            return True
        return False

    def _output(self, run: _Run, budget: OutputBudget, pipe: str, line: str) -> None:
        text = budget.take(line)
        if text is not None:
            log.info("%s %s: %s", run, pipe, text,
                     extra={"stream_id": run.trigger.stream_id, "hook": run.trigger.hook,
                            "event": "hook_output", "pipe": pipe})

    def _finished(self, run: _Run, returncode: int | None, timed_out: bool,
                  budget: OutputBudget, seconds: float) -> None:
        if budget.skipped:
            log.info("%s: %d more output lines not logged (log_lines = %d)", run,
                     budget.skipped, self.section.log_lines,
                     extra={"stream_id": run.trigger.stream_id, "hook": run.trigger.hook})
        if timed_out:
            self._failed(run, "timeout", f"still running after {self.section.timeout:g} s: "
                                         "killed with its process group")
        elif returncode is not None and returncode < 0:
            self._failed(run, "exit", f"killed by signal {-returncode}")
        elif returncode:
            self._failed(run, "exit", f"exit status {returncode}")
        else:
            log.info("%s done in %.2f s", run, seconds,
                     extra={"stream_id": run.trigger.stream_id, "hook": run.trigger.hook,
                            "event": "hook_done"})

    def _failed(self, run: _Run, reason: str, detail: str) -> None:
        self.failures[(run.trigger.hook, reason)] += 1
        log.warning("%s failed: %s", run, detail,
                    extra={"stream_id": run.trigger.stream_id, "hook": run.trigger.hook,
                           "event": "hook_failed", "reason": reason})

    # ---- shutdown and numbers --------------------------------------------------------------

    async def close(self, grace: float = 1.0) -> None:
        """Stop: nothing new starts, waiting runs are dropped, running ones get `grace`
        seconds and are then killed."""
        self._closing = True
        if left := self._queue.clear():
            log.warning("%d hook run(s) still waiting at shutdown were not run", len(left))
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        self._killing = True
        for pgid in list(self._groups):
            _signal_group(pgid, signal.SIGKILL)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=OUTPUT_GRACE_S + 0.5)

    def stats(self) -> dict[str, Any]:
        return {"runs": dict(self.runs), "failures": dict(self.failures),
                "dropped": dict(self.dropped), "running": self._queue.running,
                "waiting": self._queue.waiting}
