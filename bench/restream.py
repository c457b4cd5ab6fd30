"""Restream benchmark: one 1080p25 camera re-served to N RTSP readers, streamwarden vs a relay.

    .venv/bin/python bench/restream.py --readers 1,10,50 --duration 15 --warmup 5

One camera server with one 1920x1080 25 fps mount is started. For each N, streamwarden (one
stream, `[stream_defaults] buffer_duration = "0s"`, so no recorder) ingests it and re-serves it
at rtsp://<restream listen>/cam1; N ffmpeg readers (`-c copy -f null`, no decoding) read that
URL over TCP. After a warm-up, the service's CPU, RSS and camera connections are read over one
window. Then the same N readers read from the peer: a bare gst-rtsp-server relay (this file run
with `--relay`, a shared media factory `rtspsrc ! rtph264depay ! h264parse ! rtph264pay`),
measured the same way. go2rtc would be the natural peer but is not installable from the
registries here, so the relay is the smallest thing that does the same job. The two servers
never run at the same time.

The figure of interest is the server process's CPU (per reader); the readers' total CPU is
reported for context only (it shows how loaded the host was, not what either server costs).

Results: a table on stdout and JSON in bench/results/restream-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    BenchError,
    Child,
    Processes,
    check_alive,
    code_line,
    comma_list,
    cpu_ticks,
    environment,
    free_port,
    interrupt_on_signals,
    missing_tools,
    pct_of_core,
    run_in_workspace,
    save_results,
    tcp_received,
    wait_until,
)
from measure import (
    MIN_READY_BYTES,
    Client,
    Column,
    Streamwarden,
    fmt,
    measure,
    ratios,
    table,
)

WIDTH, HEIGHT, FPS, GOP, CLIP_SECONDS = 1920, 1080, 25, 25, 4
SERVERS = ("streamwarden", "gst-relay")
RELAY_LAUNCH = ("( rtspsrc location={url} protocols=tcp latency=200 ! rtph264depay ! "
                "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )")


# ---- the peer: a bare gst-rtsp-server relay (runs in its own process) ------------------------


def run_relay(camera_url: str, port: int) -> int:
    """Serve `camera_url` at rtsp://127.0.0.1:<port>/cam1 with one shared media for all readers.

    Shared, so N readers cost one camera connection and one depay/pay chain, as in
    streamwarden; nothing else (no supervision, no API), so it is the floor a relay can reach
    in GStreamer. Prints READY once the server is attached.
    """
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(RELAY_LAUNCH.format(url=camera_url))
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam1", factory)
    if server.attach(None) == 0:
        print(f"relay: cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print("READY", flush=True)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, loop.quit)  # SIGTERM: clean exit
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 2, loop.quit)
    loop.run()
    return 0


# ---- children -------------------------------------------------------------------------------


def start_camera_1080p(processes: Processes, port: int, timeout: float) -> Child:
    """The camera at 1080p (harness.start_camera is fixed at 720p); waits for its READY line.

    The first run at a new size encodes the clip, which takes a while at 1080p; later runs
    reuse the cached clip.
    """
    camera = processes.start("camera", [
        sys.executable, "-m", "streamwarden.demo.camera", "--port", str(port), "--path", "/cam1",
        "--width", str(WIDTH), "--height", str(HEIGHT), "--fps", str(FPS),
        "--seconds", str(CLIP_SECONDS), "--gop", str(GOP),
    ], stdout=subprocess.PIPE)
    wait_for_ready_line(camera, timeout, "camera")
    return camera


def wait_for_ready_line(child: Child, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([child.proc.stdout], [], [], 0.5)
        if readable and child.proc.stdout.readline().startswith(b"READY"):
            return
        check_alive([child])
    raise BenchError(f"{what} not ready within {timeout:g}s")


def start_service(processes: Processes, camera_url: str, camera_port: int, restream_port: int,
                  timeout: float) -> Child:
    """streamwarden with one stream (cam1) and no recorder; returns once cam1 is streaming."""
    service = Streamwarden.launch(processes, [camera_url], camera_port, {
        "restream": {"listen": f"127.0.0.1:{restream_port}"},
        "stream_defaults": {"buffer_duration": "0s"},
    })
    wait_until(service.ready, timeout, "streamwarden's cam1 to stream")
    return service.children[0]


def start_relay(processes: Processes, camera_url: str, restream_port: int,
                timeout: float) -> Child:
    relay = processes.start("gst-relay", [
        sys.executable, str(Path(__file__).resolve()), "--relay", camera_url, str(restream_port),
    ], stdout=subprocess.PIPE)
    wait_for_ready_line(relay, timeout, "gst-relay")
    return relay


def start_readers(processes: Processes, url: str, count: int) -> list[Child]:
    """N ffmpeg readers copying the video to null: no decode, so each costs little."""
    return [processes.start(f"reader-{count}-{i}", [
        "ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url,
        "-map", "0:v", "-c", "copy", "-f", "null", "-",
    ]) for i in range(1, count + 1)]


def readers_flowing(readers: list[Child], port: int) -> bool:
    """Every reader holds a connection to the server and video has arrived on it."""
    check_alive(readers)
    received = {pid: got for (pid, _local), got in tcp_received(port).items()}
    return all(received.get(r.pid, 0) >= MIN_READY_BYTES for r in readers)


# ---- one server, N readers ------------------------------------------------------------------


def bench_server(name: str, count: int, processes: Processes, camera: Child, camera_url: str,
                 camera_port: int, args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, then N readers; measure the server (and, for context, the readers).

    The server is measured with measure.measure (a Client of one process whose `count` is N,
    so `cpu_pct_per_stream` is per reader and `connections` counts the server's connections
    to the camera); the readers' CPU and traffic are read around that same window.
    """
    restream_port = free_port()
    started: list[Child] = []
    try:
        if name == "streamwarden":
            server = start_service(processes, camera_url, camera_port, restream_port,
                                   args.ready_timeout)
        else:
            server = start_relay(processes, camera_url, restream_port, args.ready_timeout)
        started.append(server)
        readers = start_readers(processes, f"rtsp://127.0.0.1:{restream_port}/cam1", count)
        started += readers
        wait_until(lambda: readers_flowing(readers, restream_port), args.ready_timeout,
                   f"{count} readers of {name} to receive video")
        time.sleep(args.warmup)
        client = Client([server], camera_port, count)
        reader_pids = [r.pid for r in readers]
        before = (time.monotonic(), sum(cpu_ticks(p) for p in reader_pids),
                  tcp_received(restream_port))
        result = measure(client, camera, args.duration)
        after = (time.monotonic(), sum(cpu_ticks(p) for p in reader_pids),
                 tcp_received(restream_port))
        check_alive(readers)
        seconds = after[0] - before[0]
        mine = set(reader_pids)
        rates = [(after[2][k] - before[2][k]) * 8 / 1000 / seconds
                 for k in before[2].keys() & after[2].keys() if k[0] in mine]
        return {
            **result,
            "readers": count,
            "camera_connections": result.get("connections"),
            "readers_cpu_pct": round(pct_of_core(after[1] - before[1], seconds), 1),
            "reader_kbps_mean": round(sum(rates) / len(rates), 1) if rates else None,
            "reader_kbps_min": round(min(rates), 1) if rates else None,
            "readers_receiving": len(rates),
        }
    except BenchError as exc:
        return {"error": str(exc)}
    finally:
        processes.stop(list(reversed(started)))


def bench_count(count: int, processes: Processes, camera: Child, camera_url: str,
                camera_port: int, args: argparse.Namespace) -> dict[str, Any]:
    clients = {}
    for name in args.servers:
        print(f"N={count}: {name} ...", file=sys.stderr, flush=True)
        clients[name] = bench_server(name, count, processes, camera, camera_url, camera_port,
                                     args)
    peers = tuple(s for s in args.servers if s != "streamwarden")
    return {"streams": count, "clients": clients, "ratios": ratios(clients, peers)}


# ---- output ---------------------------------------------------------------------------------

COLUMNS: tuple[Column, ...] = (
    ("N", 3, lambda n, c, r: str(n)),
    ("server", 12, lambda n, c, r: c),
    ("cpu%", 7, lambda n, c, r: f"{r['cpu_pct']:.1f}"),
    ("cpu%/rdr", 8, lambda n, c, r: f"{r['cpu_pct_per_stream']:.3f}"),
    ("RSS MiB", 8, lambda n, c, r: f"{r['rss_mib']:.0f}"),
    ("cam conns", 9, lambda n, c, r: fmt(r.get("camera_connections"), "{}")),
    ("rdr kbps", 8, lambda n, c, r: fmt(r.get("reader_kbps_mean"), "{:.0f}")),
    ("rdr min", 7, lambda n, c, r: fmt(r.get("reader_kbps_min"), "{:.0f}")),
    ("rdrs cpu%", 9, lambda n, c, r: f"{r['readers_cpu_pct']:.1f}"),
    ("cam cpu%", 8, lambda n, c, r: f"{r['camera_cpu_pct']:.1f}"),
    ("other%", 6, lambda n, c, r: f"{r['other_cpu_pct']:.1f}"),
    ("psi%", 5, lambda n, c, r: f"{r['cpu_pressure_pct']:.0f}"),
)


def verdicts(runs: list[dict[str, Any]]) -> str:
    """Per N: the CPU ratio, and whether streamwarden kept to one camera connection."""
    lines = []
    for run in runs:
        ratio = run["ratios"].get("streamwarden/gst-relay")
        sw = run["clients"].get("streamwarden", {})
        conns = sw.get("camera_connections")
        lines.append(f"N={run['streams']:>3}: streamwarden/gst-relay CPU = {fmt(ratio, '{:.2f}')}"
                     f"; streamwarden camera connections = {fmt(conns, '{}')}"
                     f"{'' if conns == 1 or conns is None else '  (expected 1!)'}")
    return "\n".join(lines)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any]) -> None:
    print(f"\nrestream: one {WIDTH}x{HEIGHT}@{FPS} H.264 camera re-served over RTSP/TCP to N "
          f"ffmpeg readers (-c copy -f null), {args.duration:g}s window after {args.warmup:g}s "
          f"warm-up, {os.cpu_count()} cores; every % is of one core; cpu% = the server process "
          f"only; rdrs cpu% = all N readers together (context); psi% = CPU pressure")
    print(code_line(env) + "\n")
    print(table(runs, COLUMNS))
    print()
    print(verdicts(runs))


# ---- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", default="1,10,50",
                        help="comma-separated reader counts (default 1,10,50)")
    parser.add_argument("--duration", type=float, default=15.0, help="measuring window, s")
    parser.add_argument("--warmup", type=float, default=5.0, help="after all readers flow, s")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"which servers, in order (default {','.join(SERVERS)})")
    parser.add_argument("--ready-timeout", type=float, default=45.0,
                        help="for the server and every reader to receive video, s")
    parser.add_argument("--camera-timeout", type=float, default=240.0,
                        help="for the camera server (the first run encodes its clip), s")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temp dir with configs and logs")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in comma_list(args.readers)]
    args.servers = comma_list(args.servers)
    unknown = set(args.servers) - set(SERVERS)
    if unknown or not args.counts or min(args.counts) < 1:
        parser.error(f"bad --readers or --servers {sorted(unknown) or ''}")
    return args


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["--relay"]:
        if len(raw) != 3:
            print("usage: restream.py --relay CAMERA_URL PORT", file=sys.stderr)
            return 2
        return run_relay(raw[1], int(raw[2]))
    args = parse_args(raw)
    for tool in missing_tools(("ffmpeg", "ss")):
        print(f"restream bench: {tool} not found (run scripts/setup.sh)", file=sys.stderr)
        return 1
    interrupt_on_signals()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = environment()

    def measure_all(processes: Processes) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        camera_port = free_port()
        camera = start_camera_1080p(processes, camera_port, args.camera_timeout)
        camera_url = f"rtsp://127.0.0.1:{camera_port}/cam1"
        for count in args.counts:
            runs.append(bench_count(count, processes, camera, camera_url, camera_port,
                                    args))
        return runs

    outcome = run_in_workspace("restream bench", args.keep_logs, measure_all)
    if isinstance(outcome, int):
        return outcome
    runs = outcome
    parameters = {"width": WIDTH, "height": HEIGHT, "fps": FPS, "gop": GOP,
                  "duration_s": args.duration, "warmup_s": args.warmup,
                  "readers": args.counts, "servers": args.servers,
                  "peer": "gst-rtsp-server relay (go2rtc not installable here)",
                  "relay_launch": RELAY_LAUNCH}
    report(runs, args, env)
    save_results("restream", started, parameters, env, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
