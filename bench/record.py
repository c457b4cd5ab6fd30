"""Recording benchmark: N 720p25 cameras recorded by streamwarden, against one ffmpeg each.

    .venv/bin/python bench/record.py --streams 1,8,16 --duration 20 --warmup 5

For each N, one camera server with N mounts is started; then streamwarden (one process, every
stream `enable_recording = true`, MP4 segments) records all N, and after it N ffmpeg processes
(`-c copy -f segment`, MP4 segments, the way Frigate records) do the same. They never run at
the same time. CPU, RSS/PSS and traffic are read over one window after a warm-up, as in
ingest.py. Then each client is stopped the way that lets it finalise its files (streamwarden:
SIGTERM; ffmpeg: SIGINT) and every recorded file is read back: the camera stamps every frame
with a sequence number (SEI), so "zero frames lost" is checked, not assumed: per stream the
sequence numbers across all segments must be contiguous, with no gap and no duplicate.

`--cameras demo,bframes,h265` adds a B-frame H.264 camera and an H.265 camera (the test zoo's
RTSP camera, record_zoo.py), each measured the same way in its own table; their files are also
decoded back (frames decodable, decode/display order, B-frames kept) and each client's log
complaints counted. Each client gets a fresh zoo camera process, so sequence numbers start at
0 for it as with the demo camera.

Results: a table on stdout and JSON in bench/results/record-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import record_zoo
from harness import (
    FPS,
    GOP,
    HEIGHT,
    WIDTH,
    BenchError,
    Child,
    Processes,
    code_line,
    comma_list,
    environment,
    free_port,
    interrupt_on_signals,
    merge,
    missing_tools,
    read_extra_config,
    run_in_workspace,
    save_results,
    wait_until,
)
from measure import (
    COMMON_LEFT,
    COMMON_RIGHT,
    RECORDED_COLUMNS,
    Client,
    Column,
    Streamwarden,
    each_client,
    ffmpeg_frames,
    fmt,
    measure,
    ratios,
    start_per_camera,
    table,
    thread_summary,
)
from verify import check_recordings

CLIENTS = ("streamwarden", "ffmpeg")
CAMERAS = ("demo", *record_zoo.CAMERAS)


# ---- clients --------------------------------------------------------------------------------


class RecordingStreamwarden(Streamwarden):
    """The service with every stream recording continuously into `<base>/<stream id>/`."""

    stop_signal = signal.SIGTERM  # the service finalises every open segment, then exits 0
    stop_grace = 30.0
    recordings: dict[str, Path]

    @classmethod
    def start(cls, processes: Processes, urls: list[str], camera_port: int,
              args: argparse.Namespace, tag: str = "") -> RecordingStreamwarden:
        root = processes.log_dir / f"streamwarden-{len(urls)}{tag}"
        config = merge({
            "app": {"database": str(root / "streamwarden.db")},
            "recording": {"base_path": str(root / "recordings"), "format": "mp4",
                          "segment_duration": f"{args.segment_duration:g}s"},
        }, args.extra)
        root.mkdir()
        client = cls.launch(processes, urls, camera_port, config, {"enable_recording": True})
        base = Path(config["recording"]["base_path"])
        client.recordings = {f"cam{i}": base / f"cam{i}" for i in range(1, len(urls) + 1)}
        return client

    def ready(self) -> bool:
        """Every stream flows and its recorder has opened a segment (it is writing)."""
        if not super().ready():
            return False
        recorders = self.consumer_stats("recorder").values()
        return all(r.get("segments", 0) >= 1 for r in recorders)

    def final(self) -> dict[str, Any]:
        recorders = self.consumer_stats("recorder")
        return {
            **super().final(),
            "recorder_dropped_frames": sum(r.get("dropped_frames", 0) for r in recorders.values()),
            "recorder_errors": {sid: r["recording_error"] for sid, r in recorders.items()
                                if r.get("recording_error")},
        }


class FfmpegRecorder(Client):
    """Peer: one `ffmpeg -c copy -f segment` per camera, MP4 segments into a dir per camera.

    `-stats` keeps the `frame=` lines coming at `-v error` (for the fps column); it costs one
    short line every 0.5 s.
    """

    name = "ffmpeg"
    stop_signal = signal.SIGINT  # ffmpeg finishes the open segment (writes its moov) and exits
    stop_grace = 15.0
    recordings: dict[str, Path]

    @classmethod
    def start(cls, processes: Processes, urls: list[str], camera_port: int,
              args: argparse.Namespace) -> FfmpegRecorder:
        # zoo cameras: warnings too, so its timestamp complaints are counted (a few lines)
        level = "error" if getattr(args, "camera", "demo") == "demo" else "warning"
        root = processes.log_dir / f"ffmpeg-{len(urls)}"
        dirs = {f"cam{i}": root / f"cam{i}" for i in range(1, len(urls) + 1)}
        for path in dirs.values():
            path.mkdir(parents=True)
        children = start_per_camera(processes, "ffmpeg", urls, lambda i, url: [
            "ffmpeg", "-nostdin", "-v", level, "-stats", "-rtsp_transport", "tcp", "-i", url,
            "-c", "copy", "-map", "0", "-f", "segment",
            "-segment_time", f"{args.segment_duration:g}", "-segment_format", "mp4",
            "-reset_timestamps", "1", str(dirs[f"cam{i}"] / "%05d.mp4"),
        ])
        client = cls(children, camera_port, len(urls))
        client.recordings = dirs
        return client

    def frames(self) -> dict[str, int]:
        return ffmpeg_frames(self.children)


STARTERS = {"streamwarden": RecordingStreamwarden.start, "ffmpeg": FfmpegRecorder.start}


# ---- the run --------------------------------------------------------------------------------


def stop_and_check(client: RecordingStreamwarden | FfmpegRecorder, processes: Processes
                   ) -> dict[str, Any]:
    """Stop the client so it finalises its files, then read every file back."""
    stop_wall = time.time()
    codes = processes.stop(client.children, client.stop_grace, client.stop_signal)
    return {"exit_codes": sorted(set(codes.values())),
            **check_recordings(client.recordings, stop_wall)}


def bench_client(name: str, processes: Processes, camera: Child, camera_port: int,
                 urls: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Start one client recording all N streams, warm up, measure, stop, check the files."""
    client = STARTERS[name](processes, urls, camera_port, args)
    try:
        wait_until(client.ready, args.ready_timeout, f"{name}: {len(urls)} streams recording")
        time.sleep(args.warmup)
        figures = measure(client, camera, args.duration)
    except (BenchError, OSError, ValueError, KeyError) as exc:  # or an API/proc read failed
        processes.stop(client.children)  # the run goes on; Ctrl-C is main's to clean up
        if isinstance(exc, BenchError):
            raise
        raise BenchError(f"{name}: {exc!r}") from exc
    figures["recordings"] = stop_and_check(client, processes)
    if args.camera != "demo":  # what a player gets out of the files, and the log complaints
        figures["files"] = record_zoo.inspect_recordings(
            client.recordings, [child.log for child in client.children], name)
    return figures


def bench_count(count: int, processes: Processes, args: argparse.Namespace) -> dict[str, Any]:
    """One camera server with `count` mounts, then each client in turn against it."""
    results = each_client(count, processes, args, bench_client)
    return count_result(count, args.camera, results)


def bench_zoo_count(count: int, processes: Processes, args: argparse.Namespace
                    ) -> dict[str, Any]:
    """A zoo camera with `count` mounts for each client in turn: a fresh process each time, so
    its frame numbers start at 0 for every client (the `head` column means what it does for
    the demo camera). Clients never overlap; one that fails gets `{"error": ...}`."""
    results: dict[str, Any] = {}
    for name in args.clients:
        print(f"  {args.camera} N={count:<3} {name} ...", file=sys.stderr, flush=True)
        port = free_port()
        camera = record_zoo.start_zoo_camera(processes, port, count, args.camera,
                                             args.camera_timeout)
        try:
            results[name] = bench_client(name, processes, camera, port,
                                         [f"rtsp://127.0.0.1:{port}/cam{i}"
                                          for i in range(1, count + 1)], args)
        except BenchError as exc:
            print(f"  {args.camera} N={count} {name}: {exc}", file=sys.stderr)
            results[name] = {"error": str(exc)}
        finally:
            processes.stop([camera])
    return count_result(count, args.camera, results)


def count_result(count: int, camera: str, results: dict[str, Any]) -> dict[str, Any]:
    return {"camera": camera, "streams": count, "clients": results,
            "ratios": {"cpu_per_stream": ratios(results, CLIENTS[1:]),
                       "rss": ratios(results, CLIENTS[1:], "rss_mib"),
                       "pss": ratios(results, CLIENTS[1:], "pss_mib")}}


# ---- output ---------------------------------------------------------------------------------


COLUMNS: tuple[Column, ...] = (
    *COMMON_LEFT,
    ("PSS MiB", 7, lambda n, c, r: fmt(r.get("pss_mib") or None, "{:.0f}")),
    ("kbps/str", 8, lambda n, c, r: fmt(r.get("recv_kbps_per_stream"), "{:.0f}")),
    ("fps/str", 7, lambda n, c, r: fmt(r.get("fps_per_stream"), "{:.2f}")),
    *RECORDED_COLUMNS,
    ("retries", 7, lambda n, c, r: fmt(r.get("retries"), "{}")),
    ("tail s", 6, lambda n, c, r: fmt(r.get("recordings", {}).get("tail_s_max"), "{:.2f}")),
    *COMMON_RIGHT,
)


def _held(result: dict[str, Any]) -> str:
    rec = result.get("recordings")
    if not rec:
        return "not checked"
    if rec["lossless"]:
        head = rec["first_sequence_max"]
        return "every frame recorded" + (
            f" from camera frame {head} on (frames 0..{head - 1} of the session missing)"
            if head else "")
    return (f"LOST {rec['missing']} frame(s), {rec['repeated']} repeated, "
            f"{rec['bad_files']} bad file(s), {rec['streams_empty']} empty stream(s)")


def verdicts(runs: list[dict[str, Any]]) -> str:
    """Per N: the CPU and memory ratios and whether each client recorded every frame."""
    lines = []
    for run in runs:
        ours, theirs = (run["clients"].get(c, {}) for c in CLIENTS)
        cpu = run["ratios"]["cpu_per_stream"].get("streamwarden/ffmpeg")
        head = f"N={run['streams']:<3}"
        if cpu is not None:
            rss = run["ratios"]["rss"].get("streamwarden/ffmpeg")
            pss = run["ratios"]["pss"].get("streamwarden/ffmpeg")
            head += (f" streamwarden/ffmpeg cpu/stream {cpu:.2f}x "
                     f"({ours['cpu_pct_per_stream']:.2f}% vs {theirs['cpu_pct_per_stream']:.2f}%"
                     f", {'<=' if cpu <= 1 else '>'} goal), RSS {fmt(rss, '{:.2f}')}x, "
                     f"PSS {fmt(pss, '{:.2f}')}x;")
        lines.append(f"{head} streamwarden: {_held(ours)}; ffmpeg: {_held(theirs)}")
    return "\n".join(lines)


def report(runs: list[dict[str, Any]], args: argparse.Namespace, env: dict[str, Any],
           zoo_facts: dict[str, dict[str, Any]]) -> None:
    """The demo camera's table as it always was, then one table per zoo camera."""
    demo = [run for run in runs if run["camera"] == "demo"]
    if demo:
        report_demo(demo, args, env)
    for kind, facts in zoo_facts.items():
        print(f"\nrecord, {record_zoo.header(kind, facts, args.segment_duration)}")
        print(code_line(env) + "\n")
        mine = [run for run in runs if run["camera"] == kind]
        print(table(mine, record_zoo.COLUMNS))
        print()
        print(record_zoo.verdicts(mine, CLIENTS))


def report_demo(runs: list[dict[str, Any]], args: argparse.Namespace,
                env: dict[str, Any]) -> None:
    print(f"\nrecord: {WIDTH}x{HEIGHT}@{FPS} H.264 over RTSP/TCP into {args.segment_duration:g}s "
          f"MP4 segments, {args.duration:g}s window after {args.warmup:g}s warm-up, "
          f"{os.cpu_count()} cores; every % is of one core; other% = the rest of the host "
          f"(noise); files..tail s: read back from the recorded files of all streams after a "
          f"clean stop (head: first recorded sequence number, max over streams)")
    print(code_line(env) + "\n")
    print(table(runs, COLUMNS))
    print()
    print(verdicts(runs))
    summary = thread_summary(runs)
    if summary:
        print(summary)


# ---- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="1,8,16",
                        help="comma-separated stream counts (default 1,8,16)")
    parser.add_argument("--duration", type=float, default=20.0, help="measuring window, s")
    parser.add_argument("--warmup", type=float, default=5.0, help="after all record, s")
    parser.add_argument("--segment-duration", type=float, default=10.0,
                        help="segment length for both clients, s (default 10)")
    parser.add_argument("--cameras", default="demo",
                        help=f"which cameras, one table each: {', '.join(CAMERAS)} "
                             "(default demo; bframes: H.264 with B-frames, h265: H.265 with "
                             "B-frames, both from the test zoo)")
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help=f"which clients, in order (default {','.join(CLIENTS)})")
    parser.add_argument("--ready-timeout", type=float, default=30.0,
                        help="for every stream of a client to record, s")
    parser.add_argument("--camera-timeout", type=float, default=120.0,
                        help="for the camera server (the first run encodes its clip), s")
    parser.add_argument("--extra-config", type=Path, metavar="TOML",
                        help="TOML merged over the generated service config (its keys win), "
                             'e.g. [stream_defaults] buffer_duration = "0s"')
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the temp dir with configs, logs and recordings")
    args = parser.parse_args(argv)
    args.counts = [int(n) for n in comma_list(args.streams)]
    args.clients = comma_list(args.clients)
    args.cameras = comma_list(args.cameras)
    unknown = (set(args.clients) - set(CLIENTS)) | (set(args.cameras) - set(CAMERAS))
    if (unknown or not args.counts or min(args.counts) < 1 or args.segment_duration <= 0
            or not args.cameras):
        parser.error(f"bad --streams, --segment-duration, --clients or --cameras "
                     f"{sorted(unknown) or ''}")
    args.extra_text, args.extra = read_extra_config(parser.error, args.extra_config)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in missing_tools(("ffmpeg", "ss")):
        print(f"record bench: {tool} not found (run scripts/setup.sh)", file=sys.stderr)
        return 1
    interrupt_on_signals()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = environment()  # before the run: the code state the service is started from

    zoo_facts = {kind: record_zoo.source_facts(kind)  # encodes a clip once, if not cached
                 for kind in args.cameras if kind != "demo"}

    def measure_all(processes: Processes) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = []
        for kind in args.cameras:
            run_args = argparse.Namespace(**vars(args), camera=kind)
            if kind == "demo":
                runs += [bench_count(count, processes, run_args) for count in args.counts]
                continue
            zoo = Processes(processes.log_dir / kind)  # its own dirs: names repeat per camera
            zoo.log_dir.mkdir()
            try:
                runs += [bench_zoo_count(count, zoo, run_args) for count in args.counts]
            finally:
                zoo.stop_all()
        return runs

    outcome = run_in_workspace("record bench", args.keep_logs, measure_all)
    if isinstance(outcome, int):
        return outcome
    runs = outcome
    parameters = {"width": WIDTH, "height": HEIGHT, "fps": FPS, "gop": GOP,
                  "duration_s": args.duration, "warmup_s": args.warmup,
                  "segment_duration_s": args.segment_duration,
                  "extra_config": args.extra_text, "cameras": args.cameras,
                  "zoo_cameras": zoo_facts}
    report(runs, args, env, zoo_facts)
    save_results("record", started, parameters, env, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
