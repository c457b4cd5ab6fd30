"""The service side of inference: one worker process, its frame slots, its health, its restarts.

The worker is a plain child process (`python -m streamwarden.inference.worker`, not a fork
of this multi-threaded GStreamer process). A monitor thread reads its messages and watches it:

- it exited (crash, `kill -9`, segfault in the runtime) → restart;
- no message for `worker_deadline` (a model call hung) → kill, restart;
- its resident memory above `worker_memory_limit` (a leak) → kill, restart.

Restarts back off from 1 s to 30 s; streams keep their slots, which are reopened in the new
worker, so detections resume by themselves. Decoders write to the slots whatever the worker
does: nothing in the service ever waits for the worker.

A model that cannot be loaded is a `ModelError` from `ensure_started()`: a start-up error for
streams in the config, an API error for a stream enabled at run time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import ModelError
from streamwarden.inference.detectors.factory import DetectorSpec
from streamwarden.inference.shm import FrameSlot

log = logging.getLogger("streamwarden.inference")

STARTUP_TIMEOUT_S = 120.0
BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
MEMORY_CHECK_S = 1.0


@dataclass
class FrameResult:
    """One frame the worker looked at (called the model on, or skipped by the motion gate)."""

    stream_id: str
    seq: int
    pts: int
    wall: float
    detections: list[Detection]
    latency: float
    called: bool
    skipped: int


@dataclass
class StreamInferenceStats:
    frames_submitted: int = 0
    frames_seen: int = 0
    model_calls: int = 0
    frames_dropped: int = 0  # decoded and handed over, but a newer frame replaced it
    detections: int = 0
    batched_frames: int = 0  # model calls that carried other streams' frames too
    max_batch: int = 0
    latencies: deque = field(default_factory=lambda: deque(maxlen=200))
    # frame decoded → its result back in the service: model time plus waiting, never a queue
    ages: deque = field(default_factory=lambda: deque(maxlen=200))
    seen_times: deque = field(default_factory=lambda: deque(maxlen=64))

    def snapshot(self, now: float) -> dict[str, Any]:
        lat = sorted(self.latencies)
        recent = [t for t in self.seen_times if now - t <= 5.0]
        return {
            "frames_submitted": self.frames_submitted,
            "frames_seen": self.frames_seen,
            "model_calls": self.model_calls,
            "frames_dropped": self.frames_dropped,
            "detections": self.detections,
            "batched_frames": self.batched_frames,
            "max_batch": self.max_batch,
            "detection_fps": round(len(recent) / 5.0, 2),
            "latency_ms_p50": round(statistics.median(lat) * 1000, 1) if lat else None,
            "latency_ms_p95": _p95_ms(self.latencies),
            "result_age_ms_p95": _p95_ms(self.ages),
        }


def _p95_ms(values: deque) -> float | None:
    ordered = sorted(values)
    return round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1) if ordered else None


class _Slot:
    def __init__(self, slot: FrameSlot, motion_gate: bool, mask: list):
        self.slot = slot
        self.motion_gate = motion_gate
        self.mask = mask  # polygons the motion gate ignores
        self.stats = StreamInferenceStats()


class InferenceRunner:
    def __init__(self, spec: DetectorSpec, *, batch_size: int, deadline: float,
                 memory_limit: int, motion_gate: bool,
                 on_result: Callable[[FrameResult], None]):
        self.spec = spec
        self.batch_size = batch_size
        self.deadline = deadline
        self.memory_limit = memory_limit
        self.motion_gate = motion_gate
        self.on_result = on_result
        self.state = "stopped"  # stopped | starting | running | restarting | failed
        self.restarts = 0
        self.last_restart_reason: str | None = None
        self.model: dict[str, Any] = {}
        self.error: str | None = None
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.RLock()  # slots and IPC handles; never held while waiting
        self._start_lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._wake_w: int | None = None
        self._monitor: threading.Thread | None = None
        self._closing = threading.Event()
        self._started = threading.Event()
        self._last_message = time.monotonic()

    # ---- lifecycle -------------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the worker if it is not running; raise `ModelError` if the model is bad.

        Blocks until the model is loaded (seconds): call it from a plain thread, never from
        the GStreamer thread. Only `_start_lock` is held while waiting, so decoders opening
        and closing slots never wait for a model to load.
        """
        with self._start_lock:
            if self.state in ("running", "restarting"):
                return
            self._closing.clear()
            self._spawn_and_wait()
            self._monitor = threading.Thread(target=self._watch, name="inference-monitor",
                                             daemon=True)
            self._monitor.start()

    def _spawn_and_wait(self) -> None:
        self.state = "starting" if self.state != "restarting" else "restarting"
        parent, child = socket.socketpair()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        cmd = [sys.executable, "-m", "streamwarden.inference.worker",
               "--conn-fd", str(child.fileno()), "--wake-fd", str(wake_r),
               "--spec", json.dumps(self.spec.to_dict()), "--batch-size", str(self.batch_size),
               "--deadline", str(self.deadline)]
        proc = subprocess.Popen(cmd, pass_fds=(child.fileno(), wake_r), stdin=subprocess.DEVNULL)
        child.close()
        os.close(wake_r)
        conn = Connection(parent.detach())
        try:
            message = conn.recv() if conn.poll(STARTUP_TIMEOUT_S) else None
        except (EOFError, OSError):
            message = None
        if message is None or message.get("op") != "ready":
            reason = (message or {}).get("message") or (
                f"the inference worker did not start (exit status {proc.poll()})")
            self._kill(proc)
            conn.close()
            os.close(wake_w)
            if self.state != "restarting":
                self.state = "failed"
            self.error = reason
            raise ModelError(reason)
        self.model = {k: message.get(k) for k in ("model", "labels", "runtime", "warning")}
        if self.model.get("warning"):
            log.warning("inference: %s", self.model["warning"])
        log.info("inference worker %d ready: %s (%s)", proc.pid, self.model["model"],
                 self.model["runtime"])
        with self._lock:
            self._proc, self._conn, self._wake_w = proc, conn, wake_w
            self.state, self.error = "running", None
            self._last_message = time.monotonic()
            for stream_id, slot in self._slots.items():
                self._send_open(stream_id, slot)

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            proc, conn = self._proc, self._conn
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send({"op": "stop"})
            if proc is not None:
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    self._kill(proc)
            self._teardown_ipc()
            for slot in self._slots.values():
                slot.slot.close(unlink=True)
            self._slots.clear()
            self.state = "stopped"

    # ---- streams (any thread) --------------------------------------------------------------

    def open_stream(self, stream_id: str, capacity: int, mask: list | None = None) -> FrameSlot:
        with self._lock:
            old = self._slots.pop(stream_id, None)
            if old is not None:
                old.slot.close(unlink=True)
            slot = _Slot(FrameSlot.create(stream_id, capacity), self.motion_gate, mask or [])
            self._slots[stream_id] = slot
            self._send_open(stream_id, slot)
            return slot.slot

    def set_mask(self, stream_id: str, mask: list) -> None:
        """The stream's masks changed: its motion gate ignores them from the next frame."""
        with self._lock:
            slot = self._slots.get(stream_id)
            if slot is not None:
                slot.mask = mask
                self._send({"op": "mask", "stream": stream_id, "mask": mask})

    def close_stream(self, stream_id: str) -> None:
        with self._lock:
            slot = self._slots.pop(stream_id, None)
            self._send({"op": "close", "stream": stream_id})
        if slot is not None:
            slot.slot.close(unlink=True)

    def frame_written(self, stream_id: str) -> None:
        """A decoder published a frame (streaming thread): count it, wake the worker."""
        slot = self._slots.get(stream_id)
        if slot is not None:
            slot.stats.frames_submitted += 1
        wake = self._wake_w
        if wake is not None:
            # A full pipe (the worker is busy) or a closed one (restarting) is fine: it polls.
            with contextlib.suppress(OSError):
                os.write(wake, b"\0")

    def _send_open(self, stream_id: str, slot: _Slot) -> None:
        self._send({"op": "open", "stream": stream_id, "path": str(slot.slot.path),
                    "capacity": slot.slot.capacity, "motion_gate": slot.motion_gate,
                    "mask": slot.mask})

    def _send(self, message: dict) -> None:
        conn = self._conn
        if conn is None:
            return
        # A dead worker: the monitor notices and reopens the slots in the next one.
        with contextlib.suppress(OSError):
            conn.send(message)

    # ---- monitoring ------------------------------------------------------------------------

    def _watch(self) -> None:
        next_memory_check = 0.0
        while not self._closing.is_set():
            conn, proc = self._conn, self._proc
            if conn is None or proc is None:
                return
            try:
                if conn.poll(0.2):
                    self._handle(conn.recv())
                    self._last_message = time.monotonic()
                    continue
            except (EOFError, OSError):
                pass
            if self._closing.is_set():
                return
            now = time.monotonic()
            if proc.poll() is not None:
                self._restart(f"worker exited with status {proc.returncode}")
            elif now - self._last_message > self.deadline:
                self._restart(f"no answer from the worker for {self.deadline:g}s")
            elif now >= next_memory_check:
                next_memory_check = now + MEMORY_CHECK_S
                rss = _rss_bytes(proc.pid)
                if rss is not None and rss > self.memory_limit:
                    self._restart(f"worker memory {rss >> 20} MiB above the limit "
                                  f"{self.memory_limit >> 20} MiB")

    def _handle(self, message: dict) -> None:
        if message.get("op") != "result":
            return
        slot = self._slots.get(message["stream"])
        if slot is None:
            # The stream was closed (inference turned off, stream removed) while this frame
            # was in the model: its result must not open events or recordings after the fact.
            return
        result = FrameResult(message["stream"], message["seq"], message["pts"],
                             message["wall"],
                             [Detection.from_wire(d) for d in message["detections"]],
                             message["latency"], message["called"], message["skipped"])
        stats = slot.stats
        stats.frames_seen += 1
        stats.frames_dropped += result.skipped
        stats.seen_times.append(time.monotonic())
        stats.ages.append(max(0.0, time.time() - result.wall))
        if result.called:
            stats.model_calls += 1
            stats.latencies.append(result.latency)
            batch = int(message.get("batch") or 1)
            stats.max_batch = max(stats.max_batch, batch)
            if batch > 1:
                stats.batched_frames += 1
        stats.detections += len(result.detections)
        try:
            self.on_result(result)
        except Exception:  # a bug in event handling must not stop the monitor
            log.exception("inference: handling a result failed")

    def _restart(self, reason: str) -> None:
        log.warning("inference worker restarting: %s", reason,
                    extra={"event": "inference_restart", "reason": reason})
        with self._lock:
            self.state = "restarting"
            self.restarts += 1
            self.last_restart_reason = reason
            if self._proc is not None:
                self._kill(self._proc)
            self._teardown_ipc()
        attempt = 0
        while not self._closing.is_set():
            delay = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
            if self._closing.wait(delay):
                return
            try:
                self._spawn_and_wait()
                return
            except ModelError as exc:
                self.state, self.error = "restarting", str(exc)
                log.error("inference worker failed to restart: %s", exc)
            attempt += 1

    def _teardown_ipc(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._wake_w is not None:
            os.close(self._wake_w)
        self._conn, self._wake_w, self._proc = None, None, None

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)

    # ---- reads -----------------------------------------------------------------------------

    @property
    def worker_pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def stream_stats(self, stream_id: str) -> dict[str, Any] | None:
        slot = self._slots.get(stream_id)
        return slot.stats.snapshot(time.monotonic()) if slot is not None else None

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "restarts": self.restarts,
                "last_restart_reason": self.last_restart_reason, "error": self.error,
                "worker_pid": self.worker_pid, "model": self.model.get("model"),
                "runtime": self.model.get("runtime"), "warning": self.model.get("warning"),
                "backend": self.spec.backend}


def _rss_bytes(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None
