"""Shared fixtures: real synthetic RTSP cameras in their own processes, a running service.

Cameras are separate processes so a test can kill, restart or freeze (SIGSTOP) one the way a
real camera fails. Their clips are encoded once and cached (see streamwarden.demo.clip), so
no test encodes video live. The service runs in-process (its API on a free loopback port,
served by uvicorn on a thread) so tests can also attach consumers directly.

Nothing here loads GStreamer or the service until a test asks for one: the unit tests
(tests/unit) run without either (tests/unit/test_no_gstreamer.py checks it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Detector tests load ONNX Runtime into this process, which also runs GStreamer. Loaded after
# numpy and GStreamer, ONNX Runtime aborts on a malformed model file (a native library clash);
# loaded first it does not. The service never has this problem: ONNX Runtime only ever runs in
# the inference worker process, which does not load GStreamer.
import onnxruntime  # noqa: F401  (must come before numpy and gi)
import pytest

from streamwarden.config.model import Config
from tests.zoo.camera import zoo_camera  # noqa: F401  (fixture: cameras with real traits)

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class CameraProcess:
    """A synthetic camera server process (`python -m streamwarden.demo.camera`)."""

    port: int
    paths: list[str]
    options: list[str] = field(default_factory=list)
    process: subprocess.Popen | None = None

    def url(self, path: str | None = None) -> str:
        return f"rtsp://127.0.0.1:{self.port}{path or self.paths[0]}"

    def start(self, timeout: float = 60.0) -> CameraProcess:
        args = [sys.executable, "-m", "streamwarden.demo.camera", "--port", str(self.port)]
        for path in self.paths:
            args += ["--path", path]
        self.process = subprocess.Popen(
            [*args, *self.options], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("READY") or self.process.poll() is not None:
                break
        if not line.startswith("READY"):
            self.kill()
            raise RuntimeError(f"camera on port {self.port} did not start")
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def freeze(self) -> None:
        """Keep the connections open but send nothing (a hung camera)."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def camera_factory() -> Iterator[Callable[..., CameraProcess]]:
    cameras: list[CameraProcess] = []

    def make(paths: list[str] | None = None, options: list[str] | None = None,
             port: int | None = None) -> CameraProcess:
        camera = CameraProcess(port or free_port(), paths or ["/cam"], options or [])
        cameras.append(camera)
        return camera.start()

    yield make
    for camera in cameras:
        if camera.process and camera.process.poll() is None:
            camera.thaw()
        camera.kill()


class RunningService:
    """A Service with its API served by uvicorn on a background thread.

    With `config_file` the service can reload it (`POST /config/reload`); the test's own
    settings (ports, database, recordings) are applied to every reload as overrides, the way
    the command line's are."""

    def __init__(self, config: Config, workdir: Path, demo: bool = False,
                 config_file: Path | None = None):
        import uvicorn

        from streamwarden.api.app import create_app
        from streamwarden.config.source import ConfigFile, apply_overrides
        from streamwarden.service import Service

        self.port = free_port()
        overrides: dict[str, dict] = {"api": {"listen": f"127.0.0.1:{self.port}"}}
        if config.app.database == "streamwarden.db":  # keep tests out of the working tree
            overrides["app"] = {"database": str(workdir / "streamwarden.db")}
        if config.restream.listen == "127.0.0.1:8554":  # one port per test service
            self.rtsp_port = free_port()
            overrides["restream"] = {"listen": f"127.0.0.1:{self.rtsp_port}"}
        else:
            self.rtsp_port = config.restream.port
        if config.recording.base_path == "recordings":
            overrides["recording"] = {"base_path": str(workdir / "recordings")}
        self.config = apply_overrides(config, overrides)
        source = ConfigFile(config_file, overrides) if config_file else None
        self.service = Service(self.config, demo=demo, config_file=source)
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(self.service), host="127.0.0.1", port=self.port,
                           log_config=None, access_log=False, lifespan="on")
        )
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()),
                                       name="test-api", daemon=True)
        self.base_url = f"http://127.0.0.1:{self.port}"

    @property
    def manager(self):
        return self.service.manager

    def start(self) -> RunningService:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("service did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        # Pipelines still stopping on the service's reaper threads would overlap the next
        # test's GStreamer work in this process (CI once aborted in a discoverer beside one).
        self.service.reaper.wait_idle(10)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)


@pytest.fixture
def service_factory(tmp_path) -> Iterator[Callable[..., RunningService]]:
    running: list[RunningService] = []

    def make(config: Config | None = None, demo: bool = False,
             config_file: Path | None = None) -> RunningService:
        if config is None and config_file is not None:
            from streamwarden.config.loader import load_config

            config = load_config(config_file)
        svc = RunningService(config or Config(), tmp_path, demo=demo,
                             config_file=config_file).start()
        running.append(svc)
        return svc

    yield make
    for svc in running:
        svc.stop()


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1,
             message: str = "condition") -> object:
    """Poll until `predicate()` is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def state_of(client: httpx.Client, stream_id: str) -> dict:
    return client.get(f"/streams/{stream_id}").json()


@pytest.fixture(autouse=True, scope="session")
def _quiet_env() -> None:
    os.environ.setdefault("GST_DEBUG", "0")
