"""The inference worker process: reads the newest frame of each stream, batches, runs the model.

Started by `runner.InferenceRunner` as `python -m streamwarden.inference.worker`, with a
connected socket for messages and the read end of a wake-up pipe. It never touches GStreamer,
the database or the network: a runtime that segfaults, hangs or leaks here is killed and
restarted by the service, and recording never notices.

Messages in (dicts): `open` {stream, path, capacity, motion_gate, mask}, `mask` {stream, mask}
(the stream's masks changed: the motion gate ignores them from now on), `close` {stream},
`stop`.
Messages out: `ready` {model, labels, runtime, warning} or `error` {message} once at start;
then `result` per frame looked at, and `alive` about once a second while idle.

Batching: each round takes the newest unseen frame of up to `batch_size` streams, those that
waited longest first, and makes one model call for those that pass the motion gate.

Calls side by side: a detector that allows it (`parallel_calls`: ONNX Runtime, from
`[inference] threads`) gets up to that many calls at once, each on its own thread and for
other streams (a stream never has two calls in flight, so its frames stay in order). One call
split over two cores cost 10-20 % more CPU than two single-threaded calls at once, and the
worker kept only one core busy per call. The loop itself (frames, motion gate, messages) stays
on the main thread; a finished call wakes it through a pipe; results are sent under a lock.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection

from streamwarden.inference.detectors.base import ModelError
from streamwarden.inference.detectors.factory import DetectorSpec, build_detector
from streamwarden.inference.motion import MotionGate
from streamwarden.inference.shm import FrameSlot

ALIVE_EVERY_S = 1.0


WORKER_NICE = 10  # below the service: with `threads` > 1 the model may want every core


class _Stream:
    def __init__(self, slot: FrameSlot, motion_gate: bool, mask: list):
        self.slot = slot
        self.gate = MotionGate(mask=mask) if motion_gate else None
        self.seen_seq = slot.latest_seq()
        self.waiting_since = time.monotonic()


class Worker:
    def __init__(self, conn: Connection, wake_fd: int, batch_size: int, parallel: int = 1,
                 deadline: float = 10.0):
        self.conn = conn
        self.deadline = deadline
        self.wake_fd = wake_fd
        self.batch_size = batch_size
        self.parallel = max(1, parallel)
        self.streams: dict[str, _Stream] = {}
        self.running = True
        self._pool = (ThreadPoolExecutor(self.parallel, thread_name_prefix="model")
                      if self.parallel > 1 else None)
        self._busy: dict[str, float] = {}  # streams with a call in flight: since when
        self._lock = threading.Lock()  # `_busy`, `_failure` and the connection's send side
        self._calls = 0  # calls in flight
        self._silent = False  # a call hung: say nothing more, so the service restarts us
        self._failure: BaseException | None = None  # a call that raised: the worker ends
        self._done_r, self._done_w = os.pipe()  # a finished call wakes the loop
        os.set_blocking(self._done_r, False)

    def handle(self, message: dict) -> None:
        op = message.get("op")
        if op == "open":
            old = self.streams.pop(message["stream"], None)
            if old is not None:
                old.slot.close()
            slot = FrameSlot.attach(message["path"], message["capacity"])
            self.streams[message["stream"]] = _Stream(slot, bool(message.get("motion_gate")),
                                                      message.get("mask") or [])
        elif op == "mask":
            stream = self.streams.get(message["stream"])
            if stream is not None and stream.gate is not None:
                stream.gate.set_mask(message.get("mask") or [])
        elif op == "close":
            stream = self.streams.pop(message["stream"], None)
            if stream is not None:
                stream.slot.close()
        elif op == "stop":
            self.running = False

    def run(self, detector) -> None:
        last_sent = time.monotonic()
        try:
            while self.running:
                if self._failure is not None:
                    raise self._failure  # as a call on this thread would have: restart
                self._watch_calls()
                ready = self._pending()
                if not ready:
                    if not self._wait():
                        return
                    if time.monotonic() - last_sent >= ALIVE_EVERY_S:
                        self._send({"op": "alive"})
                        last_sent = time.monotonic()
                    continue
                self._round(detector, ready)
                last_sent = time.monotonic()
                if not self._drain_messages():
                    return
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def _watch_calls(self) -> None:
        """A call in flight past the deadline has hung: the other threads' results and the
        loop's `alive` would hide it from the service, which restarts a silent worker."""
        with self._lock:
            oldest = min(self._busy.values(), default=None)
        if oldest is not None and time.monotonic() - oldest > self.deadline:
            self._silent = True

    def _wait(self) -> bool:
        """Sleep until a frame, a message or a finished call; False when the service left."""
        readable, _, _ = select.select([self.conn.fileno(), self.wake_fd, self._done_r],
                                       [], [], 0.2)
        for fd in (self.wake_fd, self._done_r):
            if fd in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(fd, 4096)
        return self.conn.fileno() not in readable or self._drain_messages()

    def _drain_messages(self) -> bool:
        try:
            while self.conn.poll():
                self.handle(self.conn.recv())
        except (EOFError, OSError):
            return False  # the service is gone
        return self.running

    def _pending(self) -> list[tuple[str, _Stream]]:
        with self._lock:
            if self._calls >= self.parallel:
                return []  # every thread has a call: the next frame waits for one
            busy = set(self._busy)
        ready = [(sid, s) for sid, s in self.streams.items()
                 if sid not in busy and s.slot.latest_seq() > s.seen_seq]
        ready.sort(key=lambda item: item[1].waiting_since)
        return ready[:self.batch_size]

    def _round(self, detector, ready: list[tuple[str, _Stream]]) -> None:
        now = time.monotonic()
        batch, gated = [], []
        for stream_id, stream in ready:
            frame = stream.slot.read()
            previous, stream.seen_seq = stream.seen_seq, stream.slot.latest_seq()
            stream.waiting_since = now
            if frame is None:
                continue
            skipped = max(0, frame.seq - previous - 1)
            if stream.gate is not None and not stream.gate.should_run(frame.pixels, now):
                gated.append((stream_id, frame, skipped))
            else:
                batch.append((stream_id, frame, skipped))
        for stream_id, frame, skipped in gated:
            self._send_result(stream_id, frame, skipped, [], 0.0, called=False)
        if not batch:
            return
        if self._pool is None:
            self._call(detector, batch)
            return
        with self._lock:
            self._busy.update((stream_id, now) for stream_id, _, _ in batch)
            self._calls += 1
        self._pool.submit(self._call_in_thread, detector, batch)

    def _call(self, detector, batch: list) -> None:
        started = time.perf_counter()
        results = detector.detect([frame.pixels for _, frame, _ in batch])
        latency = time.perf_counter() - started
        for (stream_id, frame, skipped), detections in zip(batch, results, strict=True):
            stream = self.streams.get(stream_id)
            if stream is not None and stream.gate is not None:
                stream.gate.found(bool(detections))
            self._send_result(stream_id, frame, skipped, [d.to_wire() for d in detections],
                              latency, called=True, batch=len(batch))

    def _call_in_thread(self, detector, batch: list) -> None:
        try:
            self._call(detector, batch)
        except BaseException as exc:  # handed to the main thread, which raises it
            with self._lock:
                self._failure = self._failure or exc
        finally:
            with self._lock:
                self._calls -= 1
                for stream_id, _, _ in batch:
                    self._busy.pop(stream_id, None)
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._done_w, b"\0")

    def _send_result(self, stream_id: str, frame, skipped: int, detections: list,
                     latency: float, called: bool, batch: int = 0) -> None:
        self._send({"op": "result", "stream": stream_id, "seq": frame.seq, "pts": frame.pts,
                    "wall": frame.wall, "detections": detections, "latency": latency,
                    "called": called, "skipped": skipped, "batch": batch})

    def _send(self, message: dict) -> None:
        with self._lock:
            if not self._silent:
                self.conn.send(message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conn-fd", type=int, required=True)
    parser.add_argument("--wake-fd", type=int, required=True)
    parser.add_argument("--spec", required=True, help="DetectorSpec as JSON")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--deadline", type=float, default=10.0,
                        help="a call in flight this long has hung (`worker_deadline`)")
    args = parser.parse_args(argv)
    os.nice(WORKER_NICE)  # the model waits; the streams and the recordings do not
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="inference worker: %(levelname)s %(message)s")
    conn = Connection(args.conn_fd)
    os.set_blocking(args.wake_fd, False)
    try:
        detector = build_detector(DetectorSpec(**json.loads(args.spec)))
    except ModelError as exc:
        conn.send({"op": "error", "message": str(exc)})
        return 2
    except Exception as exc:  # an unexpected failure while loading is still a model problem
        conn.send({"op": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 2
    conn.send({"op": "ready", "model": detector.name, "labels": list(detector.labels),
               "runtime": detector.runtime, "warning": detector.warning})
    Worker(conn, args.wake_fd, args.batch_size, detector.parallel_calls,
           args.deadline).run(detector)
    return 0


if __name__ == "__main__":
    sys.exit(main())
