"""The hook runner with real processes: environment, timeout (the whole process group killed),
concurrency limit and drops, output in the log, failures counted. No GStreamer, no service:
the runner is fed notifications as the notifier hands them over, on a real asyncio loop."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from streamwarden.config.hooks import HooksSection
from streamwarden.hooks.runner import HookRunner

READY = {"type": "state", "stream_id": "cam", "state": "streaming", "previous_state": "starting",
         "reason": "", "retry_count": 0}


def ready(stream_id: str = "cam") -> dict:
    return {**READY, "stream_id": stream_id, "ts": time.time()}


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


async def settled(runner: HookRunner, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while runner.stats()["running"] or runner.stats()["waiting"]:
        assert time.monotonic() < deadline, "the runs did not finish"
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_run_gets_the_trigger_in_its_environment(tmp_path, monkeypatch):
    out = tmp_path / "env.txt"
    monkeypatch.setenv("FROM_THE_SERVICE", "kept")
    command = [script(tmp_path, "env.sh", f'env > "{out}"\n'), "--flag"]
    runner = HookRunner(HooksSection(on_stream_ready=command))

    async def main() -> None:
        runner.handle(ready())
        runner.handle({"type": "recording", "stream_id": "cam", "recording": True})  # nothing
        await settled(runner)

    asyncio.run(main())
    env = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert env["STREAMWARDEN_HOOK"] == "stream_ready" and env["STREAMWARDEN_STREAM_ID"] == "cam"
    assert env["STREAMWARDEN_STATE"] == "streaming"
    assert env["STREAMWARDEN_PREVIOUS_STATE"] == "starting"
    assert abs(float(env["STREAMWARDEN_TIME"]) - time.time()) < 10
    assert env["FROM_THE_SERVICE"] == "kept", "the service's environment is passed on"
    assert runner.stats()["runs"] == {"stream_ready": 1} and runner.stats()["failures"] == {}


def test_a_hook_that_hangs_is_killed_at_its_timeout_with_its_process_group(tmp_path):
    pids = tmp_path / "pids"
    # the hook starts a child, then hangs; the second one also ignores SIGTERM
    hang = script(tmp_path, "hang.sh", f'sleep 60 & echo $! >> "{pids}"\necho $$ >> "{pids}"\n'
                                       'echo started\nwait\n')
    stubborn = script(tmp_path, "stubborn.sh", f'trap "" TERM\nsleep 60 & echo $! >> "{pids}"\n'
                                               'while true; do sleep 0.1; done\n')
    runner = HookRunner(HooksSection(on_stream_ready=[hang], timeout=0.5,
                                     streams={"b": {"on_stream_ready": [stubborn]}}))
    took: dict[str, float] = {}

    async def main() -> None:
        started = time.monotonic()
        runner.handle(ready("a"))
        runner.handle(ready("b"))
        await settled(runner)
        took["all"] = time.monotonic() - started

    asyncio.run(main())
    assert 0.5 <= took["all"] < 0.5 + 2.0 + 1.5, took  # TERM at 0.5 s, KILL 2 s later
    assert runner.stats()["failures"] == {("stream_ready", "timeout"): 2}
    for pid in map(int, pids.read_text().split()):
        assert not alive(pid), f"process {pid} of a timed-out hook is still running"


def test_at_most_max_concurrent_run_and_a_full_line_drops(tmp_path):
    log = tmp_path / "runs.log"
    slow = script(tmp_path, "slow.sh", f'echo "start $STREAMWARDEN_STREAM_ID $(date +%s.%N)" '
                                       f'>> "{log}"\nsleep 0.4\n'
                                       f'echo "end $STREAMWARDEN_STREAM_ID $(date +%s.%N)" '
                                       f'>> "{log}"\n')
    runner = HookRunner(HooksSection(on_stream_ready=[slow], max_concurrent=2, queue=1))

    async def main() -> None:
        for n in range(5):
            runner.handle(ready(f"s{n}"))
        assert (runner.stats()["running"], runner.stats()["waiting"]) == (2, 1)
        await settled(runner)

    asyncio.run(main())
    stats = runner.stats()
    assert stats["runs"] == {"stream_ready": 3} and stats["dropped"] == {"stream_ready": 2}
    events = sorted((float(t), kind, sid) for kind, sid, t in
                    (line.split() for line in log.read_text().splitlines()))
    running = peak = 0
    for _, kind, _ in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 2
    assert {sid for _, _, sid in events} == {"s0", "s1", "s2"}, "the first ones, in order"


def test_output_is_logged_with_hook_and_stream_and_bounded(tmp_path, caplog):
    chatty = script(tmp_path, "chatty.sh", 'for i in $(seq 1 30); do echo "line $i"; done\n'
                                           'echo "oops" >&2\nprintf "no newline"\n')
    runner = HookRunner(HooksSection(on_stream_ready=[chatty], log_lines=5))
    caplog.set_level(logging.INFO, logger="streamwarden.hooks")

    async def main() -> None:
        runner.handle(ready())
        await settled(runner)

    asyncio.run(main())
    output = [r for r in caplog.records if getattr(r, "event", "") == "hook_output"]
    assert len(output) == 5
    assert all(r.hook == "stream_ready" and r.stream_id == "cam" for r in output)
    assert output[0].getMessage() == "hook stream_ready (stream cam) stdout: line 1"
    assert any("27 more output lines not logged" in r.getMessage() for r in caplog.records)
    done = [r for r in caplog.records if getattr(r, "event", "") == "hook_done"]
    assert len(done) == 1


def test_failures_are_counted_by_reason(tmp_path, caplog):
    failing = script(tmp_path, "fail.sh", "exit 3\n")
    vanishing = script(tmp_path, "vanish.sh", "exit 0\n")
    runner = HookRunner(HooksSection(on_stream_ready=[failing],
                                     streams={"gone": {"on_stream_ready": [vanishing]}}))
    os.unlink(vanishing)  # it existed when the config was loaded
    caplog.set_level(logging.INFO, logger="streamwarden.hooks")

    async def main() -> None:
        runner.handle(ready("cam"))
        runner.handle(ready("gone"))
        await settled(runner)

    asyncio.run(main())
    assert runner.stats()["failures"] == {("stream_ready", "exit"): 1,
                                          ("stream_ready", "not_found"): 1}
    failed = {r.stream_id: r.getMessage() for r in caplog.records
              if getattr(r, "event", "") == "hook_failed"}
    assert failed["cam"].endswith("failed: exit status 3")
    assert f"cannot run {vanishing!r}: No such file or directory" in failed["gone"]


def test_the_run_ends_with_its_main_process_and_takes_its_leftovers_along(tmp_path):
    pids = tmp_path / "pids"
    quick = script(tmp_path, "quick.sh", f'sleep 30 &\necho $! > "{pids}"\nexit 0\n')
    runner = HookRunner(HooksSection(on_stream_ready=[quick], timeout=20))
    took: dict[str, float] = {}

    async def main() -> None:
        started = time.monotonic()
        runner.handle(ready())
        await settled(runner)
        took["run"] = time.monotonic() - started

    asyncio.run(main())
    assert took["run"] < 3, "a background child holding the pipes does not hold the run"
    assert runner.stats()["failures"] == {}
    assert not alive(int(pids.read_text()))


def test_close_drops_waiting_runs_and_kills_running_ones(tmp_path):
    pids = tmp_path / "pids"
    hang = script(tmp_path, "hang.sh", f'echo $$ >> "{pids}"\nexec sleep 60\n')
    runner = HookRunner(HooksSection(on_stream_ready=[hang], max_concurrent=1, queue=5,
                                     timeout=60))
    took: dict[str, float] = {}

    async def main() -> None:
        for n in range(3):
            runner.handle(ready(f"s{n}"))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await runner.close(grace=0.2)
        took["close"] = time.monotonic() - started
        runner.handle(ready("late"))  # nothing starts after close
        assert runner.stats()["running"] == 0

    asyncio.run(main())
    assert took["close"] < 2.5
    assert runner.stats()["runs"] == {"stream_ready": 1}
    assert not alive(int(pids.read_text()))


@pytest.mark.parametrize("count", [200])
def test_handle_never_waits(tmp_path, count):
    """A burst of notifications costs the notifier microseconds each, whatever the commands do."""
    slow = script(tmp_path, "slow.sh", "sleep 5\n")
    runner = HookRunner(HooksSection(on_stream_ready=[slow], max_concurrent=2, queue=10))

    async def main() -> float:
        started = time.perf_counter()
        for n in range(count):
            runner.handle(ready(f"s{n}"))
        elapsed = time.perf_counter() - started
        await runner.close(grace=0)
        return elapsed

    assert asyncio.run(main()) < 0.5
    assert runner.stats()["dropped"] == {"stream_ready": count - 12}
