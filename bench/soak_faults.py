"""What the soak benchmark does to the service: its cameras, its recording disk, and the faults.

Each fault is a function of a `SoakContext` that injects one occurrence, waits until the
service has visibly recovered (the stream streams again, the worker runs again, recording
resumed) and returns a `FaultRecord` whose span is the window the loss check excuses. A fault
never leaves the system broken behind it, however it ends (Ctrl-C included): a stopped camera
gets SIGCONT, a killed one is restarted, the filler file is removed.

The faults run in rounds (`ROUND_OFFSETS`), each in its own thread, so a fault that waits
for a recovery delays none of the others; a round ends when all of them have.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    CLIP_SECONDS,
    FPS,
    GOP,
    BenchError,
    Child,
    Processes,
    free_port,
    missing_tools,
    start_camera,
)
from measure import ffmpeg_frames
from record import RecordingStreamwarden
from soak_figures import ALL_CAMERAS, Window

FAULTS = ("flap", "stall", "churn", "viewers", "worker", "disk")
CHURN_ID = "churn"  # the stream the API churn adds and deletes
RECOVERY_TIMEOUT_S = 60.0


# ---- the service ----------------------------------------------------------------------------


class SoakService(RecordingStreamwarden):
    """The service under soak: every camera recording, some detecting; read through its API."""

    inference_ids: tuple[str, ...] = ()
    restream_url: str = ""

    def api(self, method: str, path: str, body: dict[str, Any] | None = None
            ) -> tuple[int, Any]:
        """(status, JSON body or None) of one request; an HTTP error is a status, not a raise."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            with contextlib.suppress(ValueError):
                return exc.code, json.loads(raw) if raw else None
            return exc.code, None

    def health(self) -> dict[str, dict[str, Any]]:
        return {h["id"]: h for h in self.get("/health")}

    def ready(self) -> bool:
        """Every stream records, and the worker has run the model on each detecting stream."""
        if not super().ready():
            return False
        if not self.inference_ids:
            return True
        status = self.get("/inference")
        if status.get("state") != "running" or not status.get("worker_pid"):
            return False
        health = self.health()
        return all((health[s].get("inference") or {}).get("model_calls", 0) > 0
                   for s in self.inference_ids)

    def wait_for(self, check: Callable[[], bool], stop: threading.Event,
                 timeout: float = RECOVERY_TIMEOUT_S) -> float | None:
        """Poll `check` (API errors count as not yet) until true: the wall time, or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop.is_set():
            with contextlib.suppress(OSError, ValueError, KeyError):
                if check():
                    return time.time()
            stop.wait(0.5)
        return None

    def streaming(self, stream_id: str) -> bool:
        return self.health().get(stream_id, {}).get("state") == "streaming"


# ---- cameras --------------------------------------------------------------------------------


@dataclass
class Camera:
    """One camera server process: `mounts` paths /cam1..; restartable on the same port."""

    role: str
    port: int
    mounts: int
    size: tuple[int, int]
    image: Path | None
    child: Child | None = None
    starts: int = 0

    def start(self, processes: Processes, timeout: float) -> None:
        self.starts += 1
        self.child = start_camera(processes, self.port, self.mounts, timeout, self.image,
                                  name=f"camera-{self.role}-{self.starts}", size=self.size)

    def url(self, mount: int = 1) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam{mount}"

    def bytes_per_s(self) -> float:
        """The clip's bitrate, from the encoded clip in the cache (100 kB/s if not found)."""
        from streamwarden.demo.clip import ClipSpec, default_cache_dir

        spec = ClipSpec(width=self.size[0], height=self.size[1], fps=FPS, seconds=CLIP_SECONDS,
                        gop=GOP, image=str(self.image.resolve()) if self.image else None)
        path = default_cache_dir() / f"{spec.key()}.h264"
        return path.stat().st_size / CLIP_SECONDS if path.is_file() else 100_000.0


@dataclass
class Cameras:
    """The steady server (most cameras, and the churn stream's mount after them), and the
    flapping and stalling cameras, each on a server of its own so the others are untouched."""

    steady: Camera
    flap: Camera | None
    stall: Camera | None
    streams: dict[str, tuple[Camera, int]] = field(default_factory=dict)  # id -> (camera, mount)

    def stream_of(self, camera: Camera | None) -> str | None:
        return next((sid for sid, (cam, _) in self.streams.items() if cam is camera), None)

    def churn_url(self) -> str:
        return self.steady.url(self.steady.mounts)

    def all(self) -> list[Camera]:
        return [c for c in (self.steady, self.flap, self.stall) if c is not None]


def start_cameras(processes: Processes, count: int, faults: list[str], size: tuple[int, int],
                  image: Path | None, timeout: float) -> Cameras:
    """`count` cameras: the last one flaps, the one before stalls (when those faults are on)."""
    dedicated = [role for role in ("flap", "stall") if role in faults]
    steady_count = count - len(dedicated)
    if steady_count < 1:
        raise BenchError(f"{count} camera(s) leave none steady beside {', '.join(dedicated)}")
    steady = Camera("steady", free_port(), steady_count + 1, size, image)
    steady.start(processes, timeout)
    cameras = Cameras(steady, None, None)
    cameras.streams = {f"cam{i}": (steady, i) for i in range(1, steady_count + 1)}
    for role in reversed(dedicated):  # stall takes cam N-1, flap cam N
        camera = Camera(role, free_port(), 1, size, None)
        camera.start(processes, timeout)
        setattr(cameras, role, camera)
        cameras.streams[f"cam{len(cameras.streams) + 1}"] = (camera, 1)
    return cameras


# ---- the recording disk ---------------------------------------------------------------------


@dataclass
class RecordingDisk:
    """`[recording] base_path`: a tmpfs of its own when root, so it can be filled up safely."""

    path: Path
    size: int = 0
    mounted: bool = False
    note: str = ""
    filler: Path | None = None

    @classmethod
    def prepare(cls, path: Path, size: int, want_tmpfs: bool) -> RecordingDisk:
        path.mkdir(parents=True)
        disk = cls(path)
        if not want_tmpfs:
            return disk
        if os.geteuid() != 0:
            disk.note = "disk fault skipped: mounting a tmpfs needs root"
            return disk
        mib = max(16, size // 2**20)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs",
                                 str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            disk.note = f"disk fault skipped: mount failed: {result.stderr.strip()}"
            return disk
        disk.size, disk.mounted = mib * 2**20, True
        return disk

    def fill(self) -> int:
        """Fill the file system to the last byte (fallocate, then writes); bytes taken.

        Unbuffered writes, so the ENOSPC that ends the filling is the write's own and not a
        buffered flush's at close.
        """
        self.filler = self.path / "soak-filler.bin"
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            st = os.statvfs(self.path)
            with contextlib.suppress(OSError):
                os.posix_fallocate(fd, 0, max(1, st.f_bavail * st.f_frsize))
            os.lseek(fd, 0, os.SEEK_END)
            for chunk in (b"\0" * 2**20, b"\0" * 2**12, b"\0"):
                with contextlib.suppress(OSError):
                    while os.write(fd, chunk):
                        pass
        finally:
            os.close(fd)
        return self.filler.stat().st_size

    def empty(self) -> None:
        if self.filler is not None:
            self.filler.unlink(missing_ok=True)
            self.filler = None

    def unmount(self) -> None:
        """Unmount (lazily if the service still holds a file); the files are gone with it."""
        self.empty()
        if self.mounted:
            if subprocess.run(["umount", str(self.path)], capture_output=True).returncode:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False


# ---- the faults -----------------------------------------------------------------------------


@dataclass
class FaultRecord:
    """One injected fault: its window (wall time), the cameras it excuses, how it went."""

    kind: str
    start: float
    end: float
    cameras: tuple[str, ...]
    ok: bool
    detail: dict[str, Any] = field(default_factory=dict)

    def window(self) -> Window:
        return Window(self.kind, self.start, self.end, self.cameras)


@dataclass
class SoakContext:
    """What every fault needs; `records` is appended to from the fault threads."""

    processes: Processes
    service: SoakService
    cameras: Cameras
    disk: RecordingDisk
    args: Any
    # PR_SET_PDEATHSIG (see harness) fires when the *thread* that started a child ends, so a
    # camera restarted from a fault thread would die with that thread: restarts go through
    # this one thread, which lives until the service has been stopped.
    spawner: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="spawner"))
    stop: threading.Event = field(default_factory=threading.Event)
    records: list[FaultRecord] = field(default_factory=list)
    rounds: int = 0
    crash: str | None = None  # the service exited during the soak: how
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: FaultRecord) -> None:
        with self.lock:
            self.records.append(record)


def _recovered(ctx: SoakContext, stream_id: str, kind: str, start: float, detail: dict
               ) -> FaultRecord:
    """The window of a camera fault ends when its stream streams again (or the wait gave up)."""
    back = ctx.service.wait_for(lambda: ctx.service.streaming(stream_id), ctx.stop)
    released = detail.pop("released")
    detail["recovery_s"] = round(back - released, 1) if back else None
    return FaultRecord(kind, start, back or time.time(), (stream_id,), back is not None, detail)


def flap(ctx: SoakContext) -> FaultRecord:
    """The flapping camera's process is killed (SIGKILL), stays down, and comes back."""
    camera = ctx.cameras.flap
    stream_id = ctx.cameras.stream_of(camera)
    start = time.time()
    try:
        ctx.processes.stop([camera.child], grace=5, sig=signal.SIGKILL)
        ctx.stop.wait(ctx.args.flap_down)
    finally:
        ctx.spawner.submit(camera.start, ctx.processes, ctx.args.camera_timeout).result()
    return _recovered(ctx, stream_id, "flap", start, {"released": time.time()})


def stall(ctx: SoakContext) -> FaultRecord:
    """The stalling camera's process is stopped (SIGSTOP): its sockets stay open, no byte
    flows, longer than the service's timeout; then SIGCONT."""
    camera = ctx.cameras.stall
    stream_id = ctx.cameras.stream_of(camera)
    start = time.time()
    os.kill(camera.child.pid, signal.SIGSTOP)
    try:
        ctx.stop.wait(ctx.args.stall_for)
    finally:
        os.kill(camera.child.pid, signal.SIGCONT)
    return _recovered(ctx, stream_id, "stall", start, {"released": time.time()})


def _expect(calls: list[str], what: str, status: int, expected: tuple[int, ...]) -> bool:
    calls.append(f"{what} {status}")
    return status in expected


def churn(ctx: SoakContext) -> FaultRecord:
    """An extra stream is added, records, is PATCHed (a new timeout restarts its source),
    stops recording and is deleted, all through the API."""
    service, stop, calls = ctx.service, ctx.stop, []
    start = time.time()
    ok = _expect(calls, "POST /streams", service.api("POST", "/streams", {
        "id": CHURN_ID, "uri": ctx.cameras.churn_url(), "enable_recording": False})[0], (201,))
    ok &= service.wait_for(lambda: service.streaming(CHURN_ID), stop, 20) is not None
    for method, path, body, expected in (
            ("POST", f"/streams/{CHURN_ID}/record", None, (200, 201, 202)),
            ("DELETE", f"/streams/{CHURN_ID}/record", None, (200, 204)),
            ("PATCH", f"/streams/{CHURN_ID}", {"timeout": f"{4 + len(ctx.records) % 3}s"},
             (200,))):
        stop.wait(3)
        ok &= _expect(calls, f"{method} {path}", service.api(method, path, body)[0], expected)
    ok &= service.wait_for(lambda: service.streaming(CHURN_ID), stop, 20) is not None
    stop.wait(2)
    ok &= _expect(calls, f"DELETE /streams/{CHURN_ID}",
                  service.api("DELETE", f"/streams/{CHURN_ID}")[0], (204,))
    return FaultRecord("churn", start, time.time(), (), bool(ok), {"calls": calls})


def worker(ctx: SoakContext) -> FaultRecord:
    """The inference worker (pid from GET /inference) is killed; the service must restart it."""
    service = ctx.service
    start = time.time()
    status = service.get("/inference")
    old = status.get("worker_pid")
    if not old:
        return FaultRecord("worker", start, time.time(), (), False, {"error": "no worker_pid"})
    os.kill(int(old), signal.SIGKILL)
    killed = time.time()

    def running_again() -> bool:
        now = service.get("/inference")
        return now.get("state") == "running" and now.get("worker_pid") not in (None, old)

    back = service.wait_for(running_again, ctx.stop)
    return FaultRecord("worker", start, back or time.time(), (), back is not None,
                       {"pid": old, "recovery_s": round(back - killed, 1) if back else None})


def disk_full(ctx: SoakContext) -> FaultRecord:
    """The recording file system is filled to the last byte, held full, then emptied; the
    window ends when no recorder reports an error any more."""
    service, start = ctx.service, time.time()
    try:
        taken = ctx.disk.fill()
        ctx.stop.wait(ctx.args.disk_full_for)
    finally:
        ctx.disk.empty()
    emptied = time.time()

    def recording_again() -> bool:
        return all(h.get("recording_error") is None for h in service.health().values())

    back = service.wait_for(recording_again, ctx.stop)
    return FaultRecord("disk", start, back or time.time(), (ALL_CAMERAS,), back is not None,
                       {"filler_mib": round(taken / 2**20, 1),
                        "recovery_s": round(back - emptied, 1) if back else None})


def _live_viewer(url: str, seconds: float, stop: threading.Event) -> int:
    """Bytes of fMP4 a WebSocket live viewer received in `seconds`."""
    from websockets.sync.client import connect

    received, deadline = 0, time.monotonic() + seconds
    with connect(url, max_size=None, open_timeout=10) as socket:
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                message = socket.recv(timeout=left)
                received += len(message) if isinstance(message, bytes) else 0
    return received


def _mjpeg_viewer(url: str, seconds: float, stop: threading.Event) -> int:
    """Bytes of Motion JPEG an HTTP viewer received in `seconds` (then it hangs up)."""
    received, deadline = 0, time.monotonic() + seconds
    with urllib.request.urlopen(url, timeout=10) as response:
        while not stop.is_set() and time.monotonic() < deadline:
            chunk = response.read1(65536)
            if not chunk:
                break
            received += len(chunk)
    return received


def _viewer_thread(kind: str, stream_id: str, read: Callable[[], int],
                   results: list[dict[str, Any]]) -> threading.Thread:
    def run() -> None:
        result: dict[str, Any] = {"kind": kind, "stream": stream_id}
        try:
            result["bytes"] = read()
        except Exception as exc:  # a viewer that fails is a finding, not a crash of the run
            result["error"] = repr(exc)
        results.append(result)

    thread = threading.Thread(target=run, name=f"viewer-{kind}", daemon=True)
    thread.start()
    return thread


def _restream_reader(ctx: SoakContext, stream_id: str, seconds: float) -> dict[str, Any]:
    """An RTSP reader of the service's re-served stream (ffmpeg, no decoding) for `seconds`."""
    count = sum(r.kind == "viewers" for r in ctx.records) + 1
    child = ctx.processes.start(f"restream-reader-{count}", [
        "ffmpeg", "-nostdin", "-v", "error", "-stats", "-rtsp_transport", "tcp",
        "-i", f"{ctx.service.restream_url}/{stream_id}", "-map", "0:v", "-c", "copy",
        "-f", "null", "-"])
    ctx.stop.wait(seconds)
    alive = child.proc.poll() is None
    ctx.processes.stop([child], grace=5, sig=signal.SIGINT)
    frames = ffmpeg_frames([child]).get("cam1", 0)
    result: dict[str, Any] = {"kind": "rtsp", "stream": stream_id, "frames": frames}
    if not alive or not frames:
        result["error"] = f"reader exited early or got nothing: {child.log_tail(2)}"
    return result


def viewers(ctx: SoakContext) -> FaultRecord:
    """Viewers join and leave together: a live (fMP4 WebSocket) viewer on the first camera
    and on the flapping one, an MJPEG viewer on the first camera, and an RTSP reader of the
    first camera's re-served stream."""
    seconds, stop, base = ctx.args.viewers_for, ctx.stop, ctx.service.base
    first = next(iter(ctx.cameras.streams))
    live_ids = [first] + [s for s in [ctx.cameras.stream_of(ctx.cameras.flap)] if s]
    results: list[dict[str, Any]] = []
    start = time.time()
    threads = [_viewer_thread("live", sid, lambda s=sid: _live_viewer(
        f"ws{base.removeprefix('http')}/streams/{s}/live.mp4", seconds, stop), results)
        for sid in live_ids]
    threads.append(_viewer_thread("mjpeg", first, lambda: _mjpeg_viewer(
        f"{base}/streams/{first}/mjpeg?fps=2&width=320", seconds, stop), results))
    if not missing_tools(("ffmpeg",)):
        results.append(_restream_reader(ctx, first, seconds))
    for thread in threads:
        thread.join(seconds + 30)
    ok = len(results) == len(threads) + (not missing_tools(("ffmpeg",))) and all(
        "error" not in r and (r.get("bytes") or r.get("frames")) for r in results)
    return FaultRecord("viewers", start, time.time(), (), ok, {"viewers": results})


# ---- the schedule ---------------------------------------------------------------------------

# Faults come in rounds: every enabled fault once per round, at these offsets (s) from the
# round's start, so two faults on one camera never meet and the disk fills while no camera
# is down. Each round ends at rest (every fault recovered), where the sampler reads the
# service: a leak shows as a step from one round's end to the next.
ROUND_OFFSETS: dict[str, float] = {
    "churn": 0, "viewers": 0, "flap": 5, "stall": 22, "worker": 40, "disk": 45,
}
ROUND_S = 80.0  # the offsets above plus the slowest fault (disk: 20 s full + recovery) fit


ACTIONS: dict[str, Callable[[SoakContext], FaultRecord]] = {
    "flap": flap, "stall": stall, "churn": churn, "viewers": viewers, "worker": worker,
    "disk": disk_full,
}


def _run_one(ctx: SoakContext, kind: str, due: float) -> None:
    """Wait until monotonic `due`, inject one `kind`, log and keep its record."""
    if ctx.stop.wait(max(0.0, due - time.monotonic())):
        return
    start = time.time()
    try:
        record = ACTIONS[kind](ctx)
    except Exception as exc:  # the soak goes on; the failure is reported with the fault
        record = FaultRecord(kind, start, time.time(), (), False, {"error": repr(exc)})
    ctx.add(record)
    print(f"  {time.strftime('%H:%M:%S')} {kind}: {'ok' if record.ok else 'FAILED'} "
          f"{json.dumps(record.detail)[:160]}", file=sys.stderr, flush=True)


def start_round(ctx: SoakContext, kinds: list[str], begin: float) -> list[threading.Thread]:
    """One thread per fault of the round starting at monotonic `begin`; join them all."""
    threads = [threading.Thread(target=_run_one, args=(ctx, kind, begin + ROUND_OFFSETS[kind]),
                                name=f"fault-{kind}", daemon=True) for kind in kinds]
    for thread in threads:
        thread.start()
    return threads
