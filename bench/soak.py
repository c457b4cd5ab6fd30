"""Soak benchmark: the service under faults for a long time; is the line flat?

    .venv/bin/python bench/soak.py                              # 8 cameras, 30 minutes
    .venv/bin/python bench/soak.py --duration 3m --cameras 4    # the quick check

N synthetic cameras (pre-encoded, stamped frames) feed one `python -m streamwarden run` with
recording on for all (60 s segments), restream on, and the built-in detector on one or two of
them at a low rate. While it runs, faults are injected in rounds (bench/soak_faults.py): a
camera flapping, a camera stalling (SIGSTOP), API churn, live/MJPEG/RTSP viewers coming and
going, the inference worker killed, the recording file system filled up. Every sample
interval, and at rest after each round, the service process's RSS, open fds (and sockets by
what they connect), threads, child processes and CPU are read from /proc; at the end, the
slope of each per hour after the warm-up, the recorded files read back (frames missing
outside the fault windows, per camera) and every ERROR line of the service.

Results: a table on stdout and JSON in bench/results/soak-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import (
    FPS,
    BenchError,
    Processes,
    comma_list,
    cpu_ticks,
    environment,
    free_port,
    interrupt_on_signals,
    merge,
    pct_of_core,
    read_extra_config,
    rss_kib,
    run_in_workspace,
    save_results,
    wait_until,
)
from soak_faults import (
    FAULTS,
    ROUND_S,
    Cameras,
    RecordingDisk,
    SoakContext,
    SoakService,
    start_cameras,
    start_round,
)
from soak_figures import (
    Frame,
    Sample,
    Window,
    count_losses,
    fd_kind,
    group_errors,
    kind_changes,
    parse_error_line,
    socket_kinds,
    trends,
)
from soak_report import report
from verify import SEGMENT_GLOB, mp4_problem

from streamwarden.config.durations import parse_duration
from streamwarden.demo.stamp import read_stamps

SETTLE_S = 10.0  # after every stream records, before the first fault
STOP_LATENCY_S = 2.0  # frames sent this close to the stop signal may still be in flight
RECOVERY_JOIN_S = 90.0  # a fault thread finishing its recovery wait after the stop


# ---- samples from /proc ---------------------------------------------------------------------


def _children(pid: int) -> int:
    """Processes whose parent is `pid` (the worker, and any zombie it failed to reap)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                text = (entry / "stat").read_text()
                count += int(text[text.rindex(")") + 2:].split()[1]) == pid
    return count


def _fd_kinds(pid: int) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            kind = fd_kind(os.readlink(fd))
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def take_sample(pid: int, t: float, previous: Sample | None, rest: bool) -> Sample:
    """RSS, fds (and their kinds), threads, children and CPU of `pid`, `t` s after ready."""
    ticks = cpu_ticks(pid)
    kinds = _fd_kinds(pid)
    cpu = (pct_of_core(ticks - previous.cpu_ticks, t - previous.t)
           if previous is not None and t > previous.t else None)
    return Sample(t=round(t, 1), rss_kib=rss_kib(pid), fds=sum(kinds.values()),
                  threads=len(os.listdir(f"/proc/{pid}/task")), children=_children(pid),
                  cpu_ticks=ticks, cpu_pct=round(cpu, 2) if cpu is not None else None,
                  fd_kinds=kinds, rest=rest)


def port_names(ctx: SoakContext) -> dict[int, str]:
    """The loopback ports of the run, named: the cameras, the API, the RTSP re-server."""
    names = {camera.port: f"camera-{camera.role}" for camera in ctx.cameras.all()}
    names[int(ctx.service.base.rsplit(":", 1)[1])] = "api"
    names[int(ctx.service.restream_url.rsplit(":", 1)[1])] = "restream"
    return names


class ServiceExitedError(BenchError):
    """The service died during the soak: the finding of the run, reported with the rest."""


class Sampler:
    """The service's samples: one every `interval` s whatever is going on, and one at rest
    at each round's end (and at start and end), all timed from `ready` (monotonic)."""

    def __init__(self, ctx: SoakContext, ready: float, interval: float):
        self.child = ctx.service.children[0]
        self.ports = port_names(ctx)
        self.ready, self.interval = ready, interval
        self.due = ready + interval
        self.samples: list[Sample] = []
        self.take(rest=True)

    def take(self, rest: bool) -> None:
        """One sample; one less than a second after the last replaces it (rest if either)."""
        if self.child.proc.poll() is not None:
            raise ServiceExitedError(f"the service exited with {self.child.proc.returncode}: "
                                f"{self.child.log_tail(3)}")
        t = time.monotonic() - self.ready
        if self.samples and t - self.samples[-1].t < 1.0:
            replaced = self.samples.pop()
            rest = rest or replaced.rest
        previous = self.samples[-1] if self.samples else None
        sample = take_sample(self.child.pid, t, previous, rest)
        if rest:  # which sockets: only at rest, where a change means something
            ss = subprocess.run(["ss", "-tuxanpH"], capture_output=True, text=True).stdout
            sample.sockets.update(socket_kinds(ss, self.child.pid, self.ports))
        self.samples.append(sample)

    def until(self, when: float) -> None:
        """Periodic samples until monotonic `when`."""
        while (now := time.monotonic()) < when:
            time.sleep(max(0.0, min(self.due, when) - now))
            if time.monotonic() >= self.due:
                self.take(rest=False)
                self.due += self.interval


def soak_rounds(ctx: SoakContext, kinds: list[str], ready: float, args: argparse.Namespace
                ) -> list[Sample]:
    """Rounds of faults (as many as fit in the duration) while the main thread samples.

    A round's faults are joined before its rest sample, so a slow recovery delays the next
    round instead of overlapping it; no round starts that could not end in time. If the
    service dies, the soak ends there (`ctx.crash`) and what was gathered is still reported.
    """
    sampler = Sampler(ctx, ready, args.sample_interval)
    begin, end = ready + SETTLE_S, ready + args.duration
    try:
        while kinds and begin + args.round <= end:
            threads = start_round(ctx, kinds, begin)
            try:
                sampler.until(begin + args.round)
            except BaseException:
                ctx.stop.set()  # every fault thread undoes its fault and returns
                raise
            finally:
                for thread in threads:
                    thread.join(RECOVERY_JOIN_S)
            sampler.take(rest=True)
            ctx.rounds += 1
            begin = max(begin + args.round, time.monotonic())
        sampler.until(end)
        sampler.take(rest=True)
    except ServiceExitedError as exc:
        ctx.crash = str(exc)
        print(f"  {time.strftime('%H:%M:%S')} {exc}", file=sys.stderr, flush=True)
    return sampler.samples


# ---- the service ----------------------------------------------------------------------------


def start_service(processes: Processes, cameras: Cameras, base: Path, args: argparse.Namespace
                  ) -> SoakService:
    """The generated config: every camera recording, the first ones detecting, JSON logs."""
    root = processes.log_dir / "service"
    root.mkdir()
    restream = f"127.0.0.1:{free_port()}"
    config = merge({
        "app": {"database": str(root / "streamwarden.db"), "log_format": "json"},
        "recording": {"base_path": str(base), "format": "mp4",
                      "segment_duration": f"{args.segment_duration:g}s"},
        "restream": {"listen": restream},
        "inference": {"fps": args.inference_fps},
    }, args.extra)
    ids = list(cameras.streams)
    detecting = tuple(ids[:args.inference_cameras])
    urls = [camera.url(mount) for camera, mount in cameras.streams.values()]
    service = SoakService.launch(processes, urls, cameras.steady.port, config,
                                 {"enable_recording": True},
                                 {sid: {"enable_inference": True} for sid in detecting})
    service.inference_ids = detecting
    service.restream_url = f"rtsp://{restream}"
    service.recordings = {sid: base / sid for sid in ids}
    return service


def final_state(service: SoakService) -> dict[str, Any]:
    """What the service says about itself at the end, before it is stopped."""
    health = service.health()
    recorders = service.consumer_stats("recorder")
    inference = service.get("/inference")
    with urllib.request.urlopen(service.base + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    stuck = next((float(line.split()[-1]) for line in metrics.splitlines()
                  if line.startswith("streamwarden_stuck_disposals")), None)
    return {
        "states": {sid: h["state"] for sid, h in health.items()},
        "retries": {sid: h["retry_count"] for sid, h in health.items()},
        "last_retry_reason": {sid: h["last_retry_reason"] for sid, h in health.items()
                              if h.get("last_retry_reason")},
        "recording_errors": {sid: h.get("recording_error") for sid, h in health.items()
                             if h.get("recording_error")},
        "recorder_dropped_frames": {sid: r.get("dropped_frames", 0)
                                    for sid, r in recorders.items()},
        "segments": {sid: r.get("segments", 0) for sid, r in recorders.items()},
        "worker_restarts": inference.get("restarts"),
        "worker_last_restart_reason": inference.get("last_restart_reason"),
        "stuck_disposals": stuck,
        "recordings_index": recordings_index(service),
    }


def recordings_index(service: SoakService) -> dict[str, dict[str, int]]:
    """Per stream, the segments `GET /recordings` lists, by status, the empty ones (0 bytes)
    apart: what an operator browsing the recordings would be offered."""
    index: dict[str, dict[str, int]] = {}
    for sid in service.recordings:
        counts: dict[str, int] = {}
        for row in service.get(f"/recordings?stream_id={sid}&limit=10000"):
            key = row["status"] + (" with 0 bytes" if row.get("bytes") == 0 else "")
            counts[key] = counts.get(key, 0) + 1
        index[sid] = counts
    return index


# ---- after the run: files and logs ----------------------------------------------------------


def _file_start(path: Path) -> float:
    """When a segment began: its name is its UTC start (`2026-11-30T17-40-40.836Z.mp4`)."""
    try:
        return datetime.strptime(path.stem, "%Y-%m-%dT%H-%M-%S.%fZ").replace(
            tzinfo=UTC).timestamp()
    except ValueError:
        return path.stat().st_mtime


def read_frames(directory: Path) -> tuple[list[Frame], int, dict[str, dict[str, Any]]]:
    """Every stamped frame of a stream's files in recording order, the file count, and the
    files that would not play (why, and the wall time span they cover)."""
    files = sorted(directory.glob(SEGMENT_GLOB)) if directory.is_dir() else []
    frames: list[Frame] = []
    bad: dict[str, dict[str, Any]] = {}
    for path in files:
        data = path.read_bytes()
        stamps = [Frame(s.sequence, s.wall_time) for s in read_stamps(data)]
        if problem := mp4_problem(data):
            span = ((stamps[0].wall, stamps[-1].wall) if stamps
                    else (_file_start(path),) * 2)
            bad[path.name] = {"problem": problem, "span": span, "bytes": len(data)}
        frames += stamps
    return frames, len(files), bad


def _bad_outside(bad: dict[str, dict[str, Any]], stream_id: str, windows: list[Window],
                 margin: float) -> list[str]:
    """Files that would not play and whose frames lie outside every window excusing them."""
    return [name for name, file in bad.items()
            if not any(w.excuses(stream_id) and w.start - margin <= file["span"][1]
                       and file["span"][0] <= w.end + margin for w in windows)]


def check_recordings(service: SoakService, windows: list[Window], stop_wall: float,
                     origin: float, margin: float) -> dict[str, Any]:
    """Per camera: frames recorded, missing inside and outside its fault windows, bad files."""
    streams: dict[str, Any] = {}
    for sid, directory in service.recordings.items():
        frames, files, bad = read_frames(directory)
        loss = count_losses(frames, sid, windows, fps=FPS, margin=margin,
                            end=stop_wall - STOP_LATENCY_S, origin=origin)
        streams[sid] = {"files": files, "frames": loss.frames, "lost_outside": loss.outside,
                        "lost_in_faults": loss.inside, "repeats": loss.repeats,
                        "restarts_outside": loss.restarts_outside,
                        "gaps_outside": loss.gaps_outside[:20],
                        "bad_files": {name: f"{f['problem']} ({f['bytes']} bytes)"
                                      for name, f in bad.items()},
                        "bad_outside": _bad_outside(bad, sid, windows, margin)}
    total = {key: sum(s[key] for s in streams.values())
             for key in ("files", "frames", "lost_outside", "lost_in_faults", "repeats")}
    total["bad_files"] = sum(len(s["bad_files"]) for s in streams.values())
    total["bad_outside"] = sum(len(s["bad_outside"]) for s in streams.values())
    return {"total": total, "streams": streams}


def gap_context(log: Path, recordings: dict[str, Any], before: float = 30.0,
                after: float = 10.0, most: int = 60) -> None:
    """Beside each gap outside the faults, the service's log lines about that stream from
    `before` s ahead of it to `after` s past it: what the service said while frames went
    missing, kept in the JSON (the log itself goes with the workspace)."""
    gaps = [(sid, gap) for sid, stream in recordings["streams"].items()
            for gap in stream["gaps_outside"]]
    if not gaps:
        return
    entries = []
    with open(log, errors="replace") as lines:
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                entries.append((datetime.fromisoformat(entry["ts"]).timestamp(), entry))
    origin = recordings["origin"]
    for sid, gap in gaps:
        start, end = origin + gap["at_s"] - before, origin + gap["until_s"] + after
        gap["log"] = [f"+{wall - origin:.1f}s {e['level']} {e['msg']}"[:300]
                      for wall, e in entries if start <= wall <= end
                      and (e.get("stream_id") == sid or f"{sid}:" in e["msg"]
                           or f"{sid} " in e["msg"])][:most]


def service_errors(service: SoakService, windows: list, margin: float) -> dict[str, Any]:
    """ERROR and CRITICAL lines of the service's log (and its worker's), grouped."""
    lines = []
    with open(service.children[0].log, errors="replace") as log:
        for line in log:
            if (found := parse_error_line(line.rstrip("\n"))) is not None:
                lines.append(found)
    groups = group_errors(lines, windows, margin)
    return {"lines": len(lines),
            "outside_faults": sum(g["during"].get("none", 0) for g in groups),
            "groups": groups}


# ---- the run --------------------------------------------------------------------------------


def run_soak(ctx: SoakContext, args: argparse.Namespace) -> dict[str, Any]:
    """Faults on their schedule while the main thread samples; then the files and the logs."""
    service = ctx.service
    ready, origin = time.monotonic(), time.time()
    kinds = [k for k in args.faults if k != "disk" or ctx.disk.mounted]
    try:
        samples = soak_rounds(ctx, kinds, ready, args)
    finally:
        ctx.stop.set()
    state = final_state(service) if ctx.crash is None else {}
    stop_wall = time.time()
    codes = ctx.processes.stop(service.children, 30, signal.SIGTERM)
    windows = [r.window() for r in ctx.records]
    recordings = check_recordings(service, windows, stop_wall, origin, args.margin)
    gap_context(service.children[0].log, {**recordings, "origin": origin})
    return {
        "origin": origin,
        "rounds": ctx.rounds,
        "crash": ctx.crash,
        "service_exit_code": codes.get(service.children[0].name),
        "samples": [vars(s) for s in samples],
        "trends": trends(samples, args.warmup),
        "fd_kind_changes": kind_changes(samples, args.warmup),
        "socket_changes": kind_changes(samples, args.warmup, "sockets"),
        "faults": [vars(r) for r in sorted(ctx.records, key=lambda r: r.start)],
        "fault_summary": fault_summary(ctx.records, kinds),
        "recordings": recordings,
        "errors": service_errors(service, windows, args.margin),
        "final_state": state,
        "disk": {"tmpfs_mib": ctx.disk.size // 2**20, "note": ctx.disk.note},
        "roles": {sid: role_of(ctx, sid) for sid in ctx.cameras.streams},
    }


def fault_summary(records: list, kinds: list[str]) -> dict[str, dict[str, Any]]:
    """Per kind: how many were injected, how many failed, recovery times."""
    summary = {}
    for kind in kinds:
        mine = [r for r in records if r.kind == kind]
        recovery = [r.detail["recovery_s"] for r in mine
                    if r.detail.get("recovery_s") is not None]
        summary[kind] = {"injected": len(mine), "failed": sum(not r.ok for r in mine),
                         "recovery_s_mean": round(sum(recovery) / len(recovery), 1)
                         if recovery else None,
                         "recovery_s_max": max(recovery) if recovery else None}
    return summary


def role_of(ctx: SoakContext, stream_id: str) -> str:
    camera, _mount = ctx.cameras.streams[stream_id]
    role = camera.role
    if stream_id in ctx.service.inference_ids:
        role += "+detect"
    return role


def soak(processes: Processes, args: argparse.Namespace) -> dict[str, Any]:
    """Cameras, the recording disk, the service; the soak; everything undone at the end."""
    image = None
    if args.picture == "person":
        from inference import person_picture
        image = person_picture(*args.size)
    cameras = start_cameras(processes, args.cameras, args.faults, args.size, image,
                            args.camera_timeout)
    rate = sum(cam.bytes_per_s() * cam.mounts for cam in cameras.all())
    disk = RecordingDisk.prepare(processes.log_dir / "recordings",
                                 int(rate * (args.duration + 120) * 1.5) + 32 * 2**20,
                                 "disk" in args.faults)
    where = f"a {disk.size // 2**20} MiB tmpfs" if disk.mounted else "the workspace"
    print(f"  recordings on {where}{'; ' + disk.note if disk.note else ''}", file=sys.stderr,
          flush=True)
    service = ctx = None
    try:
        service = start_service(processes, cameras, disk.path, args)
        wait_until(service.ready, args.ready_timeout, "every stream to record and detect")
        print(f"  {time.strftime('%H:%M:%S')} ready; soaking for {args.duration:g}s",
              file=sys.stderr, flush=True)
        ctx = SoakContext(processes, service, cameras, disk, args)
        return run_soak(ctx, args)
    finally:
        if service is not None:
            processes.stop(service.children, 30, signal.SIGTERM)
        if ctx is not None:
            ctx.spawner.shutdown()
        disk.unmount()


# ---- entry point ----------------------------------------------------------------------------


def _seconds(text: str) -> float:
    """A duration as the service's config writes it ("3m", "90s", "1h"), or bare seconds."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.partition("x")
    return int(width), int(height)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--cameras", type=int, default=8, help="camera count (default 8)")
    add("--duration", type=_seconds, default=1800.0,
        help='soak length after every stream records: "30m", "3m", "1h" (default 30m)')
    add("--faults", default=",".join(FAULTS), help=f"which faults (default {','.join(FAULTS)})")
    add("--size", type=_size, default=(640, 360), help="camera picture WxH (default 640x360)")
    add("--picture", choices=("person", "pattern"), default="person",
        help="what the steady cameras show (person: detections, events)")
    add("--segment-duration", type=_seconds, default=60.0, help="(default 60s)")
    add("--inference-cameras", type=int, default=2, help="detecting cameras (default 2)")
    add("--inference-fps", type=float, default=1.0, help="model calls/s per camera (default 1)")
    add("--sample-interval", type=_seconds, help="default: 60s, or duration/12 if less")
    add("--warmup", type=_seconds, help="samples before this are left out of the slopes "
        "(default: a quarter of the duration, at most 5m)")
    add("--margin", type=_seconds, default=5.0,
        help="seconds either side of a fault window where lost frames are excused (default 5)")
    add("--round", type=_seconds, default=ROUND_S,
        help=f"one round of every fault, then a sample at rest (default {ROUND_S:g}s)")
    add("--flap-down", type=_seconds, default=10.0, help="camera down per flap (10s)")
    add("--stall-for", type=_seconds, default=15.0, help="SIGSTOP length (15s)")
    add("--disk-full-for", type=_seconds, default=20.0, help="disk full length (20s)")
    add("--viewers-for", type=_seconds, default=20.0, help="viewers stay (20s)")
    add("--rss-limit", type=float, default=5.0,
        help="RSS slope (MiB/h) above which a run of 20 minutes or more is not flat (5)")
    add("--ready-timeout", type=float, default=120.0)
    add("--camera-timeout", type=float, default=180.0, help="the first run encodes the clip")
    add("--extra-config", type=Path, metavar="TOML", help="merged over the generated config")
    add("--keep-logs", action="store_true", help="keep the temp dir (logs, config, database)")
    args = parser.parse_args(argv)
    args.faults = comma_list(args.faults)
    unknown = set(args.faults) - set(FAULTS)
    if unknown or args.cameras < 1 or args.duration < 60:
        parser.error(f"bad --faults {sorted(unknown)}, --cameras or --duration (>= 1m)")
    args.inference_cameras = max(0, min(args.inference_cameras, args.cameras))
    if args.inference_cameras == 0 and "worker" in args.faults:
        args.faults.remove("worker")
    args.sample_interval = args.sample_interval or min(60.0, args.duration / 12)
    # By default the first round's rest sample is the baseline: every fault has then run once,
    # so one-off growth (thread pools, first viewer, first reconnect) is behind it.
    args.warmup = args.warmup if args.warmup is not None else max(
        SETTLE_S + args.round, min(300.0, args.duration / 4))
    args.extra_text, args.extra = read_extra_config(parser.error, args.extra_config)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_signals()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = environment()
    outcome = run_in_workspace("soak", args.keep_logs, lambda p: [soak(p, args)])
    if isinstance(outcome, int):
        return outcome
    result = outcome[0]
    report(result, args, env)
    parameters = {k: v for k, v in vars(args).items() if k not in ("extra", "extra_config")}
    save_results("soak", started, parameters, env, [result])
    return 0


if __name__ == "__main__":
    sys.exit(main())
