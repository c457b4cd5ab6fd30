"""One measuring window over a client, and the clients' common shape; plus table helpers.

A client is whatever pulls the N camera streams: the streamwarden service (one process) or a
peer (one process per camera). Every client is measured the same way: CPU time, memory,
threads and TCP traffic read from the kernel at both edges of the window, so start-up costs
(imports, plugin loading, RTSP handshakes) and API requests stay outside it.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    FPS,
    BenchError,
    Child,
    Processes,
    camera_urls,
    check_alive,
    cpu_pressure_us,
    cpu_ticks,
    free_port,
    host_busy_ns,
    merge,
    pct_of_core,
    pss_kib,
    rss_kib,
    start_camera,
    tcp_received,
    thread_ticks,
    toml_text,
)

EDGE_FRAMES = 1  # per stream: a frame may fall either side of the window's edges
MIN_READY_BYTES = 20_000  # a peer connection that received this much is carrying video


# ---- clients --------------------------------------------------------------------------------


class Client:
    """One way of pulling the N streams: its processes, readiness and (if it can) frame counts."""

    name = "client"

    def __init__(self, children: list[Child], camera_port: int, count: int):
        self.children = children
        self.camera_port = camera_port
        self.count = count

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.children]

    def ready(self) -> bool:
        """Every process holds its share of connections to the camera and video flows on each."""
        check_alive(self.children)
        per_pid: dict[int, list[int]] = {}
        for (pid, _port), received in tcp_received(self.camera_port).items():
            per_pid.setdefault(pid, []).append(received)
        want = self.count // len(self.children)
        return all(
            len(per_pid.get(pid, [])) >= want
            and min(per_pid[pid]) >= MIN_READY_BYTES
            for pid in self.pids
        )

    def frames(self) -> dict[str, int] | None:
        """Video frames received so far per stream, or None if this client can't tell."""
        return None

    def exact_frames(self) -> bool:
        """Whether `frames()` is exact (loss is judged) or a periodic report (rate only)."""
        return False

    def final(self) -> dict[str, Any]:
        """Anything to read before the client is stopped (retries, states)."""
        return {}


def start_per_camera(processes: Processes, name: str, urls: list[str],
                     argv: Callable[[int, str], list[str]]) -> list[Child]:
    """A peer's way: one process per camera, `argv(index, url)` each (index from 1)."""
    return [processes.start(f"{name}-{len(urls)}-{i}", argv(i, url))
            for i, url in enumerate(urls, 1)]


def ffmpeg_frames(children: list[Child]) -> dict[str, int]:
    """Frames so far per camera, from the last `frame=` stats line in each ffmpeg's log.

    ffmpeg prints them every 0.5 s, which gives a rate good to a few percent over a 20 s
    window, not an exact count.
    """
    counts = {}
    for i, child in enumerate(children, 1):
        with open(child.log, "rb") as log:
            log.seek(max(0, child.log.stat().st_size - 4096))
            found = re.findall(rb"frame=\s*(\d+)", log.read())
        counts[f"cam{i}"] = int(found[-1]) if found else 0
    return counts


class Streamwarden(Client):
    """The service under test: one process, N streams (cam1..camN) from a generated config."""

    name = "streamwarden"

    def __init__(self, children: list[Child], camera_port: int, count: int, api_port: int):
        super().__init__(children, camera_port, count)
        self.base = f"http://127.0.0.1:{api_port}"

    @classmethod
    def launch(cls, processes: Processes, urls: list[str], camera_port: int,
               config: dict[str, Any], stream_keys: dict[str, Any] | None = None,
               overrides: dict[str, dict[str, Any]] | None = None) -> Streamwarden:
        """Write the config (`config` plus one [[streams]] per URL) and start the service.

        `stream_keys` go into every stream; `overrides[id]` into stream `id` only (on top).
        The re-serving RTSP server gets a free port too: the default 8554 may be taken by
        tests or another instance, and it costs nothing while no one reads from it.
        """
        streams = [{"id": f"cam{i}", "uri": url, **(stream_keys or {}),
                    **(overrides or {}).get(f"cam{i}", {})}
                   for i, url in enumerate(urls, 1)]
        full = merge({"restream": {"listen": f"127.0.0.1:{free_port()}"}}, config)
        path = processes.log_dir / f"streamwarden-{len(urls)}.toml"
        path.write_text(toml_text({**full, "streams": streams}))
        api_port = free_port()
        child = processes.start(f"streamwarden-{len(urls)}", [
            sys.executable, "-m", "streamwarden", "run", "--config", str(path),
            "--listen", f"127.0.0.1:{api_port}",
        ])
        return cls([child], camera_port, len(urls), api_port)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=5) as response:
            return json.load(response)

    def ready(self) -> bool:
        check_alive(self.children)
        try:
            health = self.get("/health")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False  # the API is not up yet
        streaming = [h for h in health if h["state"] == "streaming"]
        return len(streaming) == self.count

    def frames(self) -> dict[str, int]:
        # One request for all streams: a single snapshot, so every stream has the same edges.
        return {s["id"]: s["statistics"]["frames"] for s in self.get("/streams")}

    def exact_frames(self) -> bool:
        return True

    def final(self) -> dict[str, Any]:
        health = self.get("/health")
        return {
            "retries": sum(h["retry_count"] for h in health),
            "retry_count": {h["id"]: h["retry_count"] for h in health},
            "states": {h["id"]: h["state"] for h in health},
            "last_retry_reason": {h["id"]: h["last_retry_reason"] for h in health
                                  if h["last_retry_reason"]},
        }

    def consumer_stats(self, kind: str) -> dict[str, dict[str, Any]]:
        """Each stream's statistics of its `kind` consumer (e.g. the recorder's drops)."""
        return {
            s["id"]: next((c for c in s["statistics"]["consumers"] if c["kind"] == kind), {})
            for s in self.get("/streams")
        }


# ---- one measuring window -------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Everything read at one edge of the window, as close together in time as possible."""

    wall: float
    client_ticks: int
    process_ticks: dict[int, int]  # per client process: a service and its worker, told apart
    camera_ticks: int
    host_busy_ns: int
    cpu_pressure_us: int
    received: dict[tuple[int, int], int]
    threads: dict[int, tuple[str, int]]

    @staticmethod
    def take(client: Client, camera: Child) -> Snapshot:
        wall = time.monotonic()
        ticks = {pid: cpu_ticks(pid) for pid in client.pids}
        return Snapshot(
            wall=wall,
            client_ticks=sum(ticks.values()),
            process_ticks=ticks,
            camera_ticks=cpu_ticks(camera.pid),
            host_busy_ns=host_busy_ns(),
            cpu_pressure_us=cpu_pressure_us(),
            received=tcp_received(client.camera_port),
            threads=thread_ticks(client.pids),
        )


def timed_frames(client: Client) -> tuple[float, dict[str, int] | None]:
    """Frame counts with the midpoint time of the request that fetched them."""
    before = time.monotonic()
    frames = client.frames()
    return (before + time.monotonic()) / 2, frames


def cpu_figures(client: Client, start: Snapshot, end: Snapshot) -> dict[str, Any]:
    seconds = end.wall - start.wall
    cpu = pct_of_core(end.client_ticks - start.client_ticks, seconds)
    camera = pct_of_core(end.camera_ticks - start.camera_ticks, seconds)
    host = 100.0 * (end.host_busy_ns - start.host_busy_ns) / 1e9 / seconds
    return {
        "window_s": round(seconds, 3),
        "processes": len(client.children),
        "cpu_pct": round(cpu, 2),
        "cpu_pct_per_stream": round(cpu / client.count, 3),
        "camera_cpu_pct": round(camera, 2),
        # Everything else on the host (kernel threads, this script, other people's jobs), in
        # % of one core: when it is large, the window was noisy and the figures are suspect.
        "host_cpu_pct": round(host, 2),
        "other_cpu_pct": round(host - cpu - camera, 2),
        "cpu_pressure_pct": round(
            100.0 * (end.cpu_pressure_us - start.cpu_pressure_us) / 1e6 / seconds, 2),
        "rss_mib": round(sum(rss_kib(pid) for pid in client.pids) / 1024, 1),
        # Per process (keyed by pid, as text for JSON), for clients of unlike processes.
        "cpu_pct_by_pid": {str(pid): round(pct_of_core(end.process_ticks[pid] - ticks, seconds), 2)
                           for pid, ticks in start.process_ticks.items()
                           if pid in end.process_ticks},
        "rss_mib_by_pid": {str(pid): round(rss_kib(pid) / 1024, 1) for pid in client.pids},
        "pss_mib": round(sum(pss_kib(pid) for pid in client.pids) / 1024, 1),
    }


def thread_figures(start: Snapshot, end: Snapshot, top: int = 8) -> dict[str, float]:
    """% of one core per kind of thread (threads alive at both edges), the busiest first.

    Element numbers are taken out of the names (`queue12:src` -> `queue:src`, `task3` ->
    `task`), so the N copies of one pipeline's thread add up to one line.
    """
    seconds = end.wall - start.wall
    by_name: dict[str, int] = {}
    for tid, (name, ticks) in end.threads.items():
        if tid in start.threads:
            kind = re.sub(r"\d+", "", name)
            by_name[kind] = by_name.get(kind, 0) + ticks - start.threads[tid][1]
    busiest = sorted(by_name.items(), key=lambda item: -item[1])[:top]
    return {name: round(pct_of_core(ticks, seconds), 2) for name, ticks in busiest if ticks}


def traffic_figures(client: Client, start: Snapshot, end: Snapshot) -> dict[str, Any]:
    """kbit/s per connection over the window; a connection that came or went is a reconnect."""
    mine = set(client.pids)
    before = {k: v for k, v in start.received.items() if k[0] in mine}
    after = {k: v for k, v in end.received.items() if k[0] in mine}
    kept = before.keys() & after.keys()
    rates = [(after[k] - before[k]) * 8 / 1000 / (end.wall - start.wall) for k in kept]
    return {
        "connections": len(after),
        "connections_replaced": len(before.keys() ^ after.keys()),
        "recv_kbps_per_stream": round(sum(rates) / len(rates), 1) if rates else None,
        "recv_kbps_min": round(min(rates), 1) if rates else None,
    }


def frame_figures(client: Client, start: tuple[float, dict[str, int] | None],
                  end: tuple[float, dict[str, int] | None]) -> dict[str, Any]:
    """Frames received vs FPS x window, per stream; `lost` tolerates EDGE_FRAMES per stream."""
    (t0, f0), (t1, f1) = start, end
    if f0 is None or f1 is None:
        return {}
    expected = FPS * (t1 - t0)
    received = {sid: f1.get(sid, 0) - f0.get(sid, 0) for sid in f1}
    fps = sum(received.values()) / len(received) / (t1 - t0)
    if not client.exact_frames():
        return {"fps_per_stream": round(fps, 2)}
    lost = {sid: max(0, round(expected - got)) for sid, got in received.items()}
    lost = {sid: n for sid, n in lost.items() if n > EDGE_FRAMES}
    return {
        "fps_per_stream": round(fps, 2),
        "frames_received": sum(received.values()),
        "frames_expected": round(expected * len(received)),
        "frames_lost": sum(lost.values()),
        "streams_losing": lost,
        "frames_per_stream": received,
        "frames_window_s": round(t1 - t0, 3),
    }


def call_rates(calls: int, per_stream: dict[str, float], seconds: float, count: int
               ) -> dict[str, Any]:
    """Model-call rates over a window, in the same keys whoever counted the calls."""
    return {
        "inference_window_s": round(seconds, 3),
        "model_calls": calls,
        "calls_per_s": round(calls / seconds, 2),
        "det_fps_per_stream": round(calls / seconds / count, 2),
        "det_fps_min": min(per_stream.values()) if per_stream else None,
        "det_fps_by_stream": per_stream,
    }


def measure(client: Client, camera: Child, duration: float) -> dict[str, Any]:
    """CPU, memory, traffic and frames over `duration` seconds; API reads stay outside it.

    Retries are counted at both edges too: one during start-up (many streams connecting at
    once) is a different finding from one while measuring.
    """
    initial = client.final()
    frames_start = timed_frames(client)
    start = Snapshot.take(client, camera)
    time.sleep(duration)
    end = Snapshot.take(client, camera)
    figures = cpu_figures(client, start, end)
    frames_end = timed_frames(client)
    check_alive(client.children)
    check_alive([camera])
    final = client.final()
    if "retries" in final:
        final["retries_in_window"] = final["retries"] - initial.get("retries", 0)
    return {
        **figures,
        **traffic_figures(client, start, end),
        "threads_cpu_pct": thread_figures(start, end),
        **frame_figures(client, frames_start, frames_end),
        **final,
    }


# ---- tables ---------------------------------------------------------------------------------

# (header, width, cell) where cell(N, client name, result) gives the text
Column = tuple[str, int, Callable[[int, str, dict[str, Any]], str]]


def fmt(value: Any, spec: str) -> str:
    return "-" if value is None else spec.format(value)


COMMON_LEFT: tuple[Column, ...] = (
    ("N", 3, lambda n, c, r: str(n)),
    ("client", 12, lambda n, c, r: c),
    ("cpu%", 7, lambda n, c, r: f"{r['cpu_pct']:.1f}"),
    ("cpu%/str", 8, lambda n, c, r: f"{r['cpu_pct_per_stream']:.2f}"),
    ("RSS MiB", 8, lambda n, c, r: f"{r['rss_mib']:.0f}"),
)
COMMON_RIGHT: tuple[Column, ...] = (
    ("cam cpu%", 8, lambda n, c, r: f"{r['camera_cpu_pct']:.1f}"),
    ("other%", 6, lambda n, c, r: f"{r['other_cpu_pct']:.1f}"),
)


def table(runs: list[dict[str, Any]], columns: tuple[Column, ...]) -> str:
    """One row per (N, client); a client that failed gets its error instead of figures."""
    header = "  ".join(f"{name:>{width}}" for name, width, _ in columns)
    lines = [header, "-" * len(header)]
    for run in runs:
        for client, result in run["clients"].items():
            if "error" in result:
                lines.append(f"{run['streams']:>3}  {client:>12}  ERROR: "
                             + result["error"].splitlines()[0])
                continue
            cells = (cell(run["streams"], client, result) for _, _, cell in columns)
            lines.append("  ".join(f"{text:>{w}}" for text, (_, w, _) in zip(cells, columns,
                                                                            strict=True)))
    return "\n".join(lines)


def ratios(results: dict[str, Any], peers: tuple[str, ...], key: str = "cpu_pct_per_stream"
           ) -> dict[str, float]:
    """streamwarden's `key` divided by each peer's: < 1 means cheaper than the peer."""
    ours = results.get("streamwarden", {}).get(key)
    out = {}
    for peer in peers:
        theirs = results.get(peer, {}).get(key)
        if ours is not None and theirs:
            out[f"streamwarden/{peer}"] = round(ours / theirs, 2)
    return out


def thread_summary(runs: list[dict[str, Any]]) -> str | None:
    """Where streamwarden's CPU went at the largest N, by thread name."""
    measured = [r for r in runs if r["clients"].get("streamwarden", {}).get("threads_cpu_pct")]
    if not measured:
        return None
    run = max(measured, key=lambda r: r["streams"])
    threads = run["clients"]["streamwarden"]["threads_cpu_pct"]
    parts = ", ".join(f"{name} {pct:.1f}%" for name, pct in threads.items())
    return f"streamwarden threads at N={run['streams']}: {parts}"


RunClient = Callable[[str, Processes, Child, int, list[str], Any], dict[str, Any]]


def each_client(count: int, processes: Processes, args: Any, run_client: RunClient,
                image: Path | None = None) -> dict[str, Any]:
    """One camera server with `count` mounts, then each of `args.clients` in turn against it.

    Clients never overlap (on 2 cores they would take CPU from each other); one that fails is
    recorded as `{"error": ...}` and the next one runs.
    """
    port = free_port()
    camera = start_camera(processes, port, count, args.camera_timeout, image=image)
    urls = camera_urls(port, count)
    results: dict[str, Any] = {}
    try:
        for name in args.clients:
            print(f"  N={count:<3} {name} ...", file=sys.stderr, flush=True)
            try:
                results[name] = run_client(name, processes, camera, port, urls, args)
            except BenchError as exc:
                print(f"  N={count} {name}: {exc}", file=sys.stderr)
                results[name] = {"error": str(exc)}
            time.sleep(1)  # let the camera notice the disconnects before the next client
    finally:
        processes.stop([camera])
    return results


def _recorded(key: str, spec: str = "{}") -> Any:
    return lambda n, c, r: fmt(r.get("recordings", {}).get(key), spec)


# What the files of a recording benchmark hold (record.py, record_zoo.py)
RECORDED_COLUMNS: tuple[Column, ...] = (
    ("files", 5, _recorded("files")),
    ("frames rec", 10, _recorded("frames")),
    ("missing", 7, _recorded("missing")),
    ("dup", 3, _recorded("repeated")),
    ("bad files", 9, _recorded("bad_files")),
    ("head", 4, _recorded("first_sequence_max")),
)
