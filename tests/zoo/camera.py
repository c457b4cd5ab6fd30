"""`ZooCamera`: one zoo camera of any kind behind the same small API, and its pytest fixture.

    def test_something(zoo_camera):
        camera = zoo_camera(CameraSpec(media=MediaSpec(bframes=2, audio="pcma")))
        camera.url            # rtsp://..., http://.../cam.ts or rtmp://.../live/cam
        camera.frames_sent()  # what left the camera: sequence numbers (and, RTSP, when)
        camera.stall(3)       # send nothing for 3 s, connections stay open
        camera.kill(); camera.restart()

RTSP cameras are `python -m tests.zoo.rtsp_camera` processes (stamps added as frames leave,
with wall time); http-ts and rtmp cameras are ffmpeg serving a pre-stamped file
(tests.zoo.stamped). Every camera is a child process the fixture ends by its id.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.zoo.ffmpeg_camera import FfmpegCamera
from tests.zoo.processes import free_port, spawn, stop, wait_until
from tests.zoo.spec import CameraSpec

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SentFrame:
    """A video frame that left the camera. RTSP: wall time and timestamps (s) as stamped;
    ffmpeg cameras: only the sequence number (the frame's index in the stamped file)."""

    sequence: int
    wall_time: float | None = None
    dts: float | None = None
    pts: float | None = None
    keyframe: bool | None = None


class RtspProcess:
    """The GStreamer RTSP camera process; `sent.log` outlives restarts (numbers go on)."""

    def __init__(self, spec: CameraSpec, workdir: Path, port: int | None = None):
        self.spec, self.workdir = spec, workdir
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log = workdir / "sent.log"

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self, timeout: float = 60) -> RtspProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "tests.zoo.rtsp_camera", "--port", str(self.port),
                "--spec", self.spec.to_json(), "--log", str(self.log),
                "--first-sequence", str(len(self.frames_sent()))]
        ready = self.workdir / "ready"
        ready.unlink(missing_ok=True)
        with open(ready, "w") as out:
            self.process = spawn(args, self.workdir / "camera.log", stdout=out,
                                 stdin=subprocess.PIPE, cwd=REPO, text=True)
        wait_until(lambda: "READY" in ready.read_text() or self.process.poll() is not None,
                   timeout, f"zoo RTSP camera on port {self.port}")
        if self.process.poll() is not None:
            raise RuntimeError(f"zoo camera exited: {(self.workdir / 'camera.log').read_text()}")
        return self

    def frames_sent(self) -> list[SentFrame]:
        if not self.log.exists():
            return []
        frames = []
        for line in self.log.read_text().splitlines():
            seq, wall, dts, pts, key, _part = line.split()
            frames.append(SentFrame(int(seq), float(wall), float(dts), float(pts), key == "1"))
        return frames

    def stall(self, seconds: float) -> None:
        self.process.stdin.write(f"stall {seconds}\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        stop(self.process)


class ZooCamera:
    """A started zoo camera (any kind) that can be stalled, killed and restarted."""

    def __init__(self, spec: CameraSpec, workdir: Path, port: int | None = None):
        self.spec = spec
        backend_type = RtspProcess if spec.kind == "rtsp" else FfmpegCamera
        self._backend = backend_type(spec, workdir, port)

    @property
    def url(self) -> str:
        return self._backend.url

    @property
    def port(self) -> int:
        return self._backend.port

    def start(self) -> ZooCamera:
        self._backend.start()
        return self

    def frames_sent(self) -> list[SentFrame]:
        backend = self._backend
        if isinstance(backend, RtspProcess):
            return backend.frames_sent()
        return [SentFrame(i) for count in backend.sent_counts() for i in range(count)]

    def stall(self, seconds: float) -> None:
        """Send nothing for `seconds` while connections stay open (ffmpeg: SIGSTOP/SIGCONT,
        after which ffmpeg's `-re` catches up with a burst)."""
        backend = self._backend
        if isinstance(backend, RtspProcess):
            backend.stall(seconds)
            return
        process = backend.process
        process.send_signal(signal.SIGSTOP)
        threading.Timer(seconds, lambda: process.poll() is None and
                        process.send_signal(signal.SIGCONT)).start()

    def kill(self) -> None:
        self._backend.stop()

    def restart(self) -> ZooCamera:
        self._backend.stop()
        return self.start()


@pytest.fixture
def zoo_camera(tmp_path) -> Iterator[Callable[..., ZooCamera]]:
    """Factory: `zoo_camera(spec)` starts a camera; all are ended after the test."""
    cameras: list[ZooCamera] = []

    def make(spec: CameraSpec | None = None, port: int | None = None) -> ZooCamera:
        camera = ZooCamera(spec or CameraSpec(), tmp_path / f"zoo-{len(cameras)}", port)
        cameras.append(camera)
        return camera.start()

    yield make
    for camera in cameras:
        camera.kill()
