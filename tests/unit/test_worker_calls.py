"""The inference worker's loop without a service: calls side by side, in order per stream,
a raising call ends the worker, a hung call silences it (the service restarts silent workers).

The loop runs on a thread of the test, talking over a real socket pair to real shared-memory
slots; the detector is a test double that sleeps (a model call's wall time) and records which
streams it was called for at the same time.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from multiprocessing.connection import Connection

import numpy as np
import pytest

from streamwarden.inference.detectors.base import Detector
from streamwarden.inference.shm import FrameSlot
from streamwarden.inference.worker import Worker

PIXELS = np.full((4, 6, 3), 7, np.uint8).tobytes()


class SlowDetector(Detector):
    """Takes `seconds` a call; notes the most calls at once and any stream called twice."""

    def __init__(self, seconds: float, parallel_calls: int, hang_on: str | None = None,
                 fail: bool = False):
        self.seconds, self.parallel_calls = seconds, parallel_calls
        self.hang_on, self.fail = hang_on, fail
        self.lock = threading.Lock()
        self.running: list[int] = []  # the frames' fill values in flight
        self.most_at_once = 0
        self.release = threading.Event()

    def detect(self, frames: list[np.ndarray]) -> list[list]:
        values = [int(f[0, 0, 0]) for f in frames]
        with self.lock:
            self.running.extend(values)
            self.most_at_once = max(self.most_at_once, len(self.running))
        if self.fail:
            raise RuntimeError("the runtime crashed")
        if self.hang_on is not None and self.hang_on in map(str, values):
            self.release.wait(30)
        time.sleep(self.seconds)
        with self.lock:
            for value in values:
                self.running.remove(value)
        return [[] for _ in frames]


class Harness:
    def __init__(self, detector: SlowDetector, streams: int, deadline: float = 10.0):
        service, worker = socket.socketpair()
        self.conn = Connection(service.detach())
        wake_r, self.wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        self.worker = Worker(Connection(worker.detach()), wake_r, batch_size=1,
                             parallel=detector.parallel_calls, deadline=deadline)
        self.slots = {f"cam{i}": FrameSlot.create(f"test-worker-cam{i}", 1024)
                      for i in range(streams)}
        for stream_id, slot in self.slots.items():
            self.worker.handle({"op": "open", "stream": stream_id, "path": str(slot.path),
                                "capacity": 1024, "motion_gate": False, "mask": []})
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(detector,), daemon=True)
        self.thread.start()

    def _run(self, detector: SlowDetector) -> None:
        try:
            self.worker.run(detector)
        except BaseException as exc:  # the test looks at it
            self.error = exc

    def write(self, stream_id: str, value: int) -> None:
        pixels = np.full((4, 6, 3), value, np.uint8).tobytes()
        self.slots[stream_id].write(pixels, 6, 4, 18, value, time.time())
        os.write(self.wake_w, b"\0")

    def messages(self, seconds: float) -> list[dict]:
        out, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.conn.poll(left):
                out.append(self.conn.recv())
        return out

    def close(self) -> None:
        self.worker.running = False
        self.thread.join(5)
        for slot in self.slots.values():
            slot.close(unlink=True)


def results(messages: list[dict]) -> list[tuple[str, int]]:
    return [(m["stream"], m["seq"]) for m in messages if m["op"] == "result"]


@pytest.mark.parametrize("parallel", [1, 2])
def test_calls_run_side_by_side_for_different_streams_only(parallel):
    detector = SlowDetector(0.3, parallel)
    h = Harness(detector, streams=2)
    try:
        h.write("cam0", 10)
        h.write("cam1", 20)
        time.sleep(0.05)
        h.write("cam0", 11)  # arrives while cam0's first call runs: waits for it
        got = results(h.messages(1.2))
    finally:
        h.close()
    assert sorted(got) == [("cam0", 1), ("cam0", 2), ("cam1", 1)], got
    assert detector.most_at_once == parallel  # 2: cam0 and cam1 at once; never cam0 twice
    assert got.index(("cam0", 1)) < got.index(("cam0", 2))


def test_a_call_that_raises_ends_the_worker_as_on_one_thread():
    h = Harness(SlowDetector(0.0, 2, fail=True), streams=1)
    try:
        h.write("cam0", 10)
        h.thread.join(5)
        assert isinstance(h.error, RuntimeError)
    finally:
        h.close()


def test_a_hung_call_silences_the_worker_while_the_others_go_on():
    """Results of the other streams (and `alive`) would hide a hung call from the service's
    deadline; past its own deadline the worker says nothing more, so it is restarted."""
    detector = SlowDetector(0.05, 2, hang_on="10")
    h = Harness(detector, streams=2, deadline=0.6)
    try:
        h.write("cam0", 10)  # hangs
        for value in range(20, 24):
            h.write("cam1", value)
            time.sleep(0.1)
        before = results(h.messages(0.2))
        assert ("cam1", 1) in before and not any(s == "cam0" for s, _ in before)
        time.sleep(0.5)  # past the deadline
        h.messages(0.2)  # whatever was sent before it
        h.write("cam1", 30)
        assert h.messages(1.5) == []
    finally:
        detector.release.set()
        h.close()
