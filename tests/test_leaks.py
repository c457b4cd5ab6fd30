"""Runs for months: open files, threads and memory stay flat over many cycles of everything that
comes and goes (streams, camera connections, recordings, viewers, inference workers).

The service runs in this process, so `/proc/self` is the service. Each test warms up first
(pools, caches and lazily started threads are created once), then repeats a cycle and checks
that the counts came back: the bounds are half a file descriptor per cycle, so a leak of one
per cycle fails. Before the fix every stream add/delete and every reconnect that opened a
recording segment kept two descriptors (a pipeline's bus socket pair) for ever.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from websockets.sync.client import connect

from streamwarden.config.model import (
    AppSection,
    Config,
    RecordingSection,
    SourceSettings,
    StreamConfig,
)
from streamwarden.heap import rss_bytes
from tests.conftest import CameraProcess, state_of, wait_for
from tests.test_inference import PERSON_CAMERA, inference_config
from tests.unit.test_heap import MIB, fragmented_heap

FAST = SourceSettings(timeout=2, restart_timeout=0.5)


@dataclass
class Usage:
    fds: int
    threads: int
    rss_mb: float

    @staticmethod
    def now() -> Usage:
        with open("/proc/self/status") as status:
            rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
        return Usage(len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task")),
                     rss_kb / 1024)


def settle(svc, collect: bool) -> Usage:
    """Let disposals finish, then count."""
    svc.service.reaper.wait_idle(5)
    if collect:
        gc.collect()
    time.sleep(0.6)
    return Usage.now()


def assert_flat(svc, cycle: Callable[[int], None], cycles: int, warmup: int = 2,
                rss_mb_per_cycle: float = 0.15) -> None:
    """Two rounds of `cycles` after a warm-up.

    Open files and threads are counted with the cyclic garbage collector off and never run:
    the service never calls `gc.collect()`, so what a stream, a segment or a viewer leaves
    behind must be freed by reference counting alone (fds held by a reference cycle pile up
    until the collector happens to run). Memory is judged in a round with the collector on,
    as in the service: the asyncio and HTTP objects of a finished viewer are its to free.
    """
    numbers = iter(range(warmup + 2 * cycles))
    for _ in range(warmup):
        cycle(next(numbers))
    gc.collect()
    gc.disable()
    try:
        before = settle(svc, collect=False)
        for _ in range(cycles):
            cycle(next(numbers))
        after = settle(svc, collect=False)
    finally:
        gc.enable()
    message = f"over {cycles} cycles: {before} -> {after}"
    assert after.fds - before.fds <= cycles // 2, f"open files grew, {message}"
    assert after.threads - before.threads <= 2, f"threads grew, {message}"
    before = settle(svc, collect=True)
    for _ in range(cycles):
        cycle(next(numbers))
    after = settle(svc, collect=True)
    grown = after.rss_mb - before.rss_mb
    assert grown <= max(8.0, rss_mb_per_cycle * cycles), f"memory grew, {before} -> {after}"


def streaming(client: httpx.Client, stream_id: str) -> bool:
    return state_of(client, stream_id).get("health", {}).get("state") == "streaming"


def config(tmp_path, **streams: str) -> Config:
    return Config(app=AppSection(database=str(tmp_path / "index.db")),
                  recording=RecordingSection(base_path=str(tmp_path / "rec"),
                                             segment_duration=600),
                  stream_defaults=FAST,
                  streams=[StreamConfig(id=sid, uri=uri) for sid, uri in streams.items()])


def test_stream_add_delete_with_recording_toggles_and_a_restream_reader(
        camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(config(tmp_path))
    client = svc.client()

    def cycle(index: int) -> None:
        created = client.post("/streams", json={"id": "s", "uri": camera.url()})
        assert created.status_code == 201, created.text
        wait_for(lambda: streaming(client, "s"), 15, message="streaming")
        if index % 2:
            client.patch("/streams/s", json={"enable_recording": True})
            wait_for(lambda: client.get("/recordings", params={"stream_id": "s"}).json(), 10,
                     message="a segment opened")
            client.patch("/streams/s", json={"enable_recording": False})
        assert client.delete("/streams/s").status_code == 204

    assert_flat(svc, cycle, cycles=10)


def restart_camera(camera: CameraProcess) -> None:
    """Kill the camera process (connections refused, then closed) and start it again."""
    camera.kill()
    camera.process.stdout.close()
    time.sleep(0.8)
    camera.start()


def test_camera_reconnects_refused_closed_and_timed_out(camera_factory, service_factory,
                                                        tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(config(tmp_path, cam=camera.url()))
    client = svc.client()
    client.post("/streams/cam/record")
    wait_for(lambda: streaming(client, "cam"), 15, message="streaming")

    def cycle(index: int) -> None:
        retries = state_of(client, "cam")["health"]["retry_count"]
        if index % 2:
            restart_camera(camera)
        else:  # the connection stays open, nothing arrives: a stalled camera
            camera.process.send_signal(signal.SIGSTOP)
            wait_for(lambda: state_of(client, "cam")["health"]["retry_count"] > retries, 10,
                     message="timeout noticed")
            camera.process.send_signal(signal.SIGCONT)
        wait_for(lambda: state_of(client, "cam")["health"]["retry_count"] > retries
                 and streaming(client, "cam"), 20, message="streaming again")

    assert_flat(svc, cycle, cycles=8)


def test_live_and_mjpeg_viewers_coming_and_going(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(config(tmp_path, cam=camera.url()))
    client = svc.client()
    wait_for(lambda: streaming(client, "cam"), 15, message="streaming")
    live_url = f"ws://127.0.0.1:{svc.port}/streams/cam/live.mp4"
    mjpeg_url = f"{svc.base_url}/streams/cam/mjpeg"

    def cycle(_index: int) -> None:
        with connect(live_url, open_timeout=10, max_size=None) as viewer:
            viewer.recv(timeout=10)  # the init message
            viewer.recv(timeout=10)  # the init segment
        with httpx.Client(timeout=20) as http, \
                http.stream("GET", mjpeg_url, params={"fps": 5, "width": 160}) as response:
            chunks = response.iter_bytes()
            received = b""
            while b"\xff\xd9" not in received:
                received += next(chunks)
        wait_for(lambda: not [c for c in state_of(client, "cam")["statistics"]["consumers"]
                              if c["kind"] in ("pixels", "live")], 10,
                 message="the decoder and the mux detached after their last viewer")

    assert_flat(svc, cycle, cycles=8)


@pytest.mark.slow
def test_inference_worker_restarts(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"], PERSON_CAMERA)
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, fps=2))
    client = svc.client()
    wait_for(lambda: client.get("/inference").json()["state"] == "running", 60,
             message="worker running")

    def cycle(index: int) -> None:
        pid = client.get("/inference").json()["worker_pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: (s := client.get("/inference").json())["state"] == "running"
                 and s["restarts"] >= index + 1 and s["worker_pid"] != pid, 30,
                 message="worker restarted")

    assert_flat(svc, cycle, cycles=4, warmup=1, rss_mb_per_cycle=1.0)


def _metric(client: httpx.Client, name: str) -> float:
    line = next(line for line in client.get("/metrics").text.splitlines()
                if line.startswith(f"{name} "))
    return float(line.split()[1])


def test_memory_that_malloc_holds_free_goes_back_to_the_system(service_factory, tmp_path):
    """The soak's slow RSS climb under churn was malloc keeping freed pages (its in-use bytes
    and the Python heap stayed flat); the service now trims every `memory_trim_interval`.
    48 MiB of holes made in this process (which is the service's) must leave its RSS."""
    cfg = config(tmp_path)
    cfg.app.memory_trim_interval = 0.2
    svc = service_factory(cfg)
    client = svc.client()
    wait_for(lambda: svc.service.heap.trims >= 1, 5, message="a first trim")
    resident = rss_bytes()  # a trim may come any time after the holes are made: count from here
    with fragmented_heap(48):
        usage = svc.service.heap.usage()
        assert usage is not None and usage.free >= 40 * MIB
        wait_for(lambda: rss_bytes() <= resident + 16 * MIB, 5,
                 message="the freed pages given back")
        assert _metric(client, "streamwarden_memory_trimmed_bytes_total") >= 32 * MIB
    svc.service.config.app.memory_trim_interval = 0  # off (read per interval: a reload)
    trims = svc.service.heap.trims
    time.sleep(0.5)
    assert svc.service.heap.trims <= trims + 1
