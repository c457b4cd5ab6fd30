"""What every benchmark here needs: children, ports, the camera, kernel readings, output.

The benchmarks (ingest.py, record.py) differ in what they ask the clients to do; the way they
start and stop processes, read CPU and memory from the kernel, describe the machine and write
results is the same, and lives here so two benchmarks can't drift apart in how they measure.

Every child runs in its own session and in the run's temp directory, gets SIGTERM if the
benchmark dies (even from kill -9), and is stopped by `Processes.stop_all` at the end.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"

WIDTH, HEIGHT, FPS, CLIP_SECONDS, GOP = 1280, 720, 25, 4, 25
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Set in the parent, used in the forked child before exec (no imports or dlopen there).
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class BenchError(RuntimeError):
    """A client could not be measured (did not start, did not stream); the run goes on."""


# ---- child processes ------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Child side of fork: get SIGTERM if the benchmark dies, so no camera outlives a kill -9."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_env() -> dict[str, str]:
    """The caller's environment with GStreamer logging pinned, so GST_DEBUG can't skew CPU."""
    env = dict(os.environ)
    env["GST_DEBUG"] = "1"  # errors only: they end up in the per-process log files
    env["PYTHONUNBUFFERED"] = "1"
    # The working tree's code, whatever directory the child runs in.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@dataclass
class Child:
    """A started process and the file its output goes to (read back when something fails)."""

    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 8) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Processes:
    """Every child this benchmark starts, so one place can stop them all, in reverse order."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self._running: list[Child] = []

    def start(self, name: str, args: list[str], stdout: int | None = None) -> Child:
        """Start `args` in its own session (Ctrl-C reaches only us), stderr to <name>.log.

        Children run in the temp dir: whatever they write relative to their working directory
        (the service's database, recordings) stays out of the repository.
        """
        path = self.log_dir / f"{name}.log"
        with open(path, "wb") as log:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=stdout or log, stderr=log, cwd=self.log_dir,
                env=child_env(), start_new_session=True, preexec_fn=_die_with_parent,
            )
        child = Child(name, proc, path)
        self._running.append(child)
        return child

    def stop(self, children: list[Child], grace: float = 8.0,
             sig: signal.Signals = signal.SIGTERM) -> dict[str, int]:
        """Signal all at once (they shut down in parallel), SIGKILL whoever outlives `grace`.

        `sig` is the signal a child treats as "finish cleanly" (ffmpeg writes its trailer on
        SIGINT). Returns each child's exit status: -9 means it had to be killed.
        """
        for child in children:
            if child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(sig)
        deadline = time.monotonic() + grace
        codes: dict[str, int] = {}
        for child in children:
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait(5)
            codes[child.name] = child.proc.returncode
            if child.proc.stdout is not None:
                child.proc.stdout.close()
            with contextlib.suppress(ValueError):
                self._running.remove(child)
        return codes

    def stop_all(self) -> None:
        self.stop(list(reversed(self._running)))


def check_alive(children: list[Child]) -> None:
    for child in children:
        if child.proc.poll() is not None:
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n"
                             f"{child.log_tail()}")


def free_port() -> int:
    """A loopback port free right now (the tiny race until the child binds is acceptable)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """SIGTERM behaves like Ctrl-C, so a kill runs the same cleanup (every child stopped)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_interrupt)


def missing_tools(tools: tuple[str, ...]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    """A temp dir for configs, logs, databases and recordings; removed unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix="streamwarden-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"logs kept in {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_in_workspace(label: str, keep_logs: bool,
                     body: Callable[[Processes], list[dict[str, Any]]]
                     ) -> list[dict[str, Any]] | int:
    """`body(processes)` in a temp workspace, every child stopped however it ends.

    Returns the runs `body` made, or an exit code: 130 after Ctrl-C/SIGTERM, 1 after a
    `BenchError` (printed with `label`).
    """
    with workspace(keep_logs) as workdir:
        processes = Processes(workdir)
        try:
            return body(processes)
        except KeyboardInterrupt:
            print("interrupted; stopping every child", file=sys.stderr)
            return 130
        except BenchError as exc:
            print(f"{label}: {exc}", file=sys.stderr)
            return 1
        finally:
            processes.stop_all()


def comma_list(text: str) -> list[str]:
    """"1, 8,16" → ["1", "8", "16"]: the benchmarks' --streams/--clients lists."""
    return [item.strip() for item in text.split(",") if item.strip()]


def read_extra_config(error: Callable[[str], Any], path: Path | None) -> tuple[str, dict]:
    """`--extra-config FILE`: its text (for the JSON) and its TOML, or `error(message)`."""
    import tomllib

    text = path.read_text() if path else ""
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        error(f"--extra-config: {exc}")
        raise  # error() exits; this is for type checkers


# ---- the camera -----------------------------------------------------------------------------


def start_camera(processes: Processes, port: int, count: int, timeout: float,
                 image: Path | None = None, *, name: str | None = None,
                 size: tuple[int, int] = (WIDTH, HEIGHT), fps: int = FPS,
                 gop: int = GOP) -> Child:
    """One camera server with `count` mounts; waits for its READY line (first run encodes).

    The camera replays a pre-encoded clip (no live encoding) and stamps every frame with a
    sequence number, so it costs little and recordings can be checked frame by frame.
    `image`: a still picture instead of the test pattern (a person, for detection), also
    encoded once and cached, keyed by its path. `name` names its log (several cameras at
    once need distinct ones); `size` is the clip's (width, height), `fps` and `gop` its rate
    and keyframe interval in frames.
    """
    args = [sys.executable, "-m", "streamwarden.demo.camera", "--port", str(port)]
    for i in range(1, count + 1):
        args += ["--path", f"/cam{i}"]
    args += ["--width", str(size[0]), "--height", str(size[1]), "--fps", str(fps),
             "--seconds", str(CLIP_SECONDS), "--gop", str(gop)]
    if image is not None:
        args += ["--image", str(image)]
    camera = processes.start(name or f"camera-{count}", args, stdout=subprocess.PIPE)
    return await_ready(camera, timeout, f"camera with {count} mounts")


def await_ready(camera: Child, timeout: float, what: str) -> Child:
    """Wait for the `READY` line a camera server (started with stdout=PIPE) prints once it
    listens; the demo camera and the zoo's RTSP camera both do."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([camera.proc.stdout], [], [], 0.5)
        if readable and camera.proc.stdout.readline().startswith(b"READY"):
            return camera
        check_alive([camera])
    raise BenchError(f"{what} not ready within {timeout:g}s")


def camera_urls(port: int, count: int) -> list[str]:
    return [f"rtsp://127.0.0.1:{port}/cam{i}" for i in range(1, count + 1)]


# ---- what the kernel tells about a process --------------------------------------------------


def cpu_ticks_at(stat: Path) -> int:
    """utime+stime from a /proc stat file (the kernel's exact run time, in clock ticks)."""
    text = stat.read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the name may contain spaces and ')'
    return int(fields[11]) + int(fields[12])


def cpu_ticks(pid: int) -> int:
    """utime+stime of `pid` so far; the kernel folds every thread (live or ended) into it."""
    return cpu_ticks_at(Path(f"/proc/{pid}/stat"))


def pct_of_core(ticks: int, seconds: float) -> float:
    return 100.0 * ticks / CLK_TCK / seconds


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages (libraries) split among the processes using them.

    Summed RSS bills every one of N peer processes for the same libavcodec; PSS does not, so
    it is the fair figure when one process is compared with N. 0 where the kernel lacks it.
    """
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def thread_ticks(pids: list[int]) -> dict[int, tuple[str, int]]:
    """(name, utime+stime) of every thread of `pids`, keyed by thread id.

    GStreamer names its streaming threads after the element and pad (`rtpjitterbuffer`,
    `queue0:src`), so this tells which part of a pipeline the CPU goes to; Python threads are
    all called `python`.
    """
    threads: dict[int, tuple[str, int]] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError):
                name = (task / "comm").read_text().strip()
                threads[int(task.name)] = (name, cpu_ticks_at(task / "stat"))
    return threads


_CPUACCT_V1 = Path("/sys/fs/cgroup/cpuacct/cpuacct.usage")  # ns, every task on the host
_CPU_STAT_V2 = Path("/sys/fs/cgroup/cpu.stat")  # usage_usec of the root cgroup
_PSI_CPU = Path("/proc/pressure/cpu")


def host_busy_ns() -> int:
    """CPU time used by every task on the host so far, as exactly as the kernel offers it.

    The cgroup counters add up the scheduler's run times. /proc/stat is only the fallback:
    its user/system jiffies are sampled at the tick and miss most of a workload that wakes
    for well under a tick (as every client here does), reading a third of the truth or less.
    """
    with contextlib.suppress(OSError, ValueError):
        return int(_CPUACCT_V1.read_text())
    with contextlib.suppress(OSError, ValueError, StopIteration):
        lines = _CPU_STAT_V2.read_text().splitlines()
        return 1000 * int(next(line.split()[1] for line in lines if line.startswith("usage_")))
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:3]) + sum(values[5:7])) * 1_000_000_000 // CLK_TCK


def cpu_pressure_us() -> int:
    """Total time some task waited for a CPU (PSI); 0 where the kernel has no PSI."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(_PSI_CPU.read_text().split("total=")[1].split()[0])
    return 0


def tcp_received(port: int) -> dict[tuple[int, int], int]:
    """bytes_received of each established connection to `port`, keyed by (pid, local port).

    Read from the kernel's TCP info (ss), so every client is measured the same way without
    touching its pipeline: equal bytes mean the camera delivered the same to each client.
    """
    out = subprocess.run(
        ["ss", "-tinpH", "state", "established", f"( dport = :{port} )"],
        capture_output=True, text=True, check=True,
    ).stdout
    received: dict[tuple[int, int], int] = {}
    key: tuple[int, int] | None = None
    for line in out.splitlines():
        if not line[:1].isspace():
            pid, local = re.search(r"pid=(\d+)", line), re.search(r":(\d+)\s+\S+:\d+", line)
            key = (int(pid.group(1)), int(local.group(1))) if pid and local else None
        elif key is not None:
            match = re.search(r"bytes_received:(\d+)", line)
            received[key] = int(match.group(1)) if match else 0
    return received


# ---- the service's config -------------------------------------------------------------------


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`, table by table (so a user's [stream_defaults] keeps ours)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list) and not any(isinstance(v, dict) for v in value):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as a TOML value")


def toml_text(config: dict[str, Any], prefix: str = "") -> str:
    """A config dict as TOML: enough of TOML for a service config (tables, arrays of tables).

    Written here rather than by a library because the service only reads TOML (tomllib) and
    the benchmark should not add a dependency to write a dozen lines.
    """
    scalars = {k: v for k, v in config.items() if not _is_table(v) and not _is_table_list(v)}
    lines = [f"{key} = {_toml_value(value)}" for key, value in scalars.items()]
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in config.items():
        name = f"{prefix}{key}"
        if _is_table(value):
            out += f"\n[{name}]\n" + toml_text(value, f"{name}.")
        elif _is_table_list(value):
            for item in value:
                out += f"\n[[{name}]]\n" + toml_text(item, f"{name}.")
    return out


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


# ---- the machine and the code ---------------------------------------------------------------


def _first_line(cmd: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.CalledProcessError, IndexError):
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout \
            .splitlines()[0]
    return "unknown"


def environment() -> dict[str, Any]:
    """Where the figures come from; CPU percentages mean little without it."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "gstreamer": _first_line(["gst-launch-1.0", "--version"]),
        "ffmpeg": _first_line(["ffmpeg", "-version"]),
        "commit": _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]),
        **working_tree(),
    }


def working_tree() -> dict[str, Any]:
    """Uncommitted changes to the service's code: the figures belong to exactly that state."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "-uall", "--", "streamwarden"],
            capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    changed = sorted(line[3:] for line in out.splitlines())
    digest = hashlib.sha1()
    for name in changed:
        digest.update(name.encode())
        with contextlib.suppress(OSError):
            digest.update((REPO / name).read_bytes())
    return {"uncommitted": changed,
            "uncommitted_sha1": digest.hexdigest()[:12] if changed else None}


def code_line(env: dict[str, Any]) -> str:
    """One line naming the code measured: the commit, plus uncommitted files if any."""
    extra = ""
    if env.get("uncommitted"):
        extra = (f" + {len(env['uncommitted'])} uncommitted file(s) under streamwarden/ "
                 f"(sha1 {env['uncommitted_sha1']})")
    return f"code: {env.get('commit')}{extra}"


def save_results(benchmark: str, started: str, parameters: dict[str, Any],
                 env: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """Write the run's JSON (one shape for every benchmark) and print where it went."""
    payload = {"benchmark": benchmark, "started": started, "parameters": parameters,
               "environment": env, "runs": runs}
    print(f"\nJSON: {write_json(benchmark, payload)}")


def write_json(benchmark: str, payload: dict[str, Any]) -> Path:
    """bench/results/<benchmark>-<timestamp>.json; returns the path relative to the repo."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{benchmark}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path.relative_to(REPO)


class WsFollower(threading.Thread):
    """Follows the service's `/ws` and keeps (arrival wall time, message) of its `detection`
    and `event` messages, of one stream or of all. Stop with `finish()`."""

    def __init__(self, base_url: str, stream: str | None = None):
        super().__init__(name="ws-follower", daemon=True)
        self.url = base_url.replace("http://", "ws://") + "/ws"
        self.stream = stream
        self.detections: list[tuple[float, dict[str, Any]]] = []
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._finished = threading.Event()  # not `_stop`: Thread has one

    def run(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url) as ws:
            while not self._finished.is_set():
                try:
                    message = json.loads(ws.recv(timeout=0.5))
                except TimeoutError:
                    continue
                if self.stream is not None and message.get("stream_id") != self.stream:
                    continue
                kept = {"detection": self.detections, "event": self.events}
                kept.get(message.get("type", ""), []).append((time.time(), message))

    def finish(self, timeout: float = 5.0) -> None:
        self._finished.set()
        self.join(timeout)
