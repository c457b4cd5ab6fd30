"""Inference parts without a pipeline: the shared-memory frame slot (across a real process
boundary), the motion gate, event grouping and pictures on a real SQLite file, late results."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np

from streamwarden.db import Database
from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.factory import DetectorSpec
from streamwarden.inference.event_log import EventLog
from streamwarden.inference.motion import MotionGate
from streamwarden.inference.runner import FrameResult, InferenceRunner
from streamwarden.inference.shm import FrameSlot


def frame(value: int, width: int = 6, height: int = 4) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def test_slot_round_trip_and_latest_wins():
    writer = FrameSlot.create("test-slot", 1024)
    try:
        reader = FrameSlot.attach(str(writer.path), 1024)
        assert reader.read() is None
        for value in (10, 20, 30):
            writer.write(frame(value).tobytes(), 6, 4, 18, value * 1000, 1.5)
        got = reader.read()
        assert got.seq == 3 and got.pts == 30000 and got.wall == 1.5
        assert got.pixels.shape == (4, 6, 3) and (got.pixels == 30).all()
        reader.close()
    finally:
        writer.close(unlink=True)
    assert not writer.path.exists()


def test_slot_handles_padded_rows():
    writer = FrameSlot.create("test-stride", 1024)
    try:
        rows = np.zeros((3, 12), np.uint8)  # 3 pixels wide = 9 bytes, padded to 12
        rows[:, :9] = 7
        rows[:, 9:] = 255
        writer.write(rows.tobytes(), 3, 3, 12, 0, 0.0)
        got = FrameSlot.attach(str(writer.path), 1024).read()
        assert got.pixels.shape == (3, 3, 3) and (got.pixels == 7).all()
    finally:
        writer.close(unlink=True)


def test_slot_rejects_a_frame_too_big():
    writer = FrameSlot.create("test-big", 16)
    try:
        try:
            writer.write(bytes(100), 10, 10, 30, 0, 0.0)
        except ValueError as exc:
            assert "exceeds" in str(exc)
        else:
            raise AssertionError("a frame bigger than the slot must be refused")
    finally:
        writer.close(unlink=True)


def test_slot_is_readable_from_another_process():
    writer = FrameSlot.create("test-proc", 1024)
    try:
        writer.write(frame(99).tobytes(), 6, 4, 18, 5, 2.0)
        code = ("from streamwarden.inference.shm import FrameSlot; "
                f"f = FrameSlot.attach({str(writer.path)!r}, 1024).read(); "
                "print(f.seq, int(f.pixels.mean()))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
        assert out == ["1", "99"]
        assert writer.path.exists()  # the reader exiting does not take the slot with it
    finally:
        writer.close(unlink=True)


def test_motion_gate_skips_static_frames_and_refreshes():
    gate = MotionGate(refresh_s=10.0)
    still = np.random.default_rng(1).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    now = time.monotonic()
    assert gate.should_run(still, now)  # the first frame always runs
    assert not gate.should_run(still.copy(), now + 0.2)
    moved = still.copy()
    moved[20:70, 40:100] = 255 - moved[20:70, 40:100]
    assert gate.should_run(moved, now + 0.4)
    assert not gate.should_run(moved, now + 0.6)
    assert gate.should_run(moved, now + 11.0)  # a static scene still gets a call now and then


def test_motion_gate_compares_with_the_picture_the_model_last_saw():
    """A still scene costs one call a minute; a change too slow to show between two frames
    adds up against the last call's picture until it counts."""
    gate = MotionGate()
    scene = np.full((90, 160, 3), 100, np.uint8)
    calls = [gate.should_run(scene, t * 0.2) for t in range(5 * 59)]  # 59 s at 5 fps
    assert calls[0] and sum(calls) == 1
    assert gate.should_run(scene, 60.0)  # the safety net
    creeping = scene.copy()
    ran_at = None
    for step in range(1, 40):  # 3 grey levels a frame: each difference is under the threshold
        creeping[30:60, 60:100] = 100 + 3 * step
        if gate.should_run(creeping, 60.0 + step * 0.2):
            ran_at = step
            break
    assert ran_at is not None and 3 * ran_at > 12, ran_at  # PIXEL_DELTA reached, no sooner
    assert not gate.should_run(creeping, 70.0)  # and the reference moved with that call


def event_log(tmp_path, recorded: list[str],
              frames: Callable[[str, int], np.ndarray | None] = lambda sid, seq: None,
              ) -> tuple[Database, EventLog]:
    db = Database(tmp_path / "index.db")
    log = EventLog(db, model_name=lambda: "test-model", event_gap=5.0, classes=None,
                   record_on=["person"], frame_lookup=frames,
                   publish=lambda message: None, record=recorded.append)
    return db, log


def person_seen(stream_id: str, wall: float, seq: int = 1,
                confidence: float = 0.9) -> FrameResult:
    return FrameResult(stream_id, seq, 0, wall,
                       [Detection("person", confidence, (0.1, 0.1, 0.5, 0.9))], 0.01, True, 0)


def test_events_group_by_gap_and_survive_inference_being_paused(tmp_path):
    recorded: list[str] = []
    db, log = event_log(tmp_path, recorded)
    try:
        t = 1000.0
        for dt in (0.0, 0.2, 4.0):
            log.handle(person_seen("cam", t + dt))
        log.clear_latest("cam")  # inference turned off and on again: the event goes on
        log.handle(person_seen("cam", t + 6.0))
        log.handle(person_seen("cam", t + 12.0))  # 6 s later than the last: a new event
        log.handle(person_seen("other", t + 12.0))
        rows = db.call(db.events, "cam")
        assert [(r.start_ts, r.end_ts, r.detections) for r in rows] == [
            (t + 12.0, t + 12.0, 1), (t, t + 6.0, 4)]
        assert recorded == ["cam"] * 5 + ["other"]
        log.forget("cam")  # the stream is removed: its next detection opens a new event
        log.handle(person_seen("cam", t + 13.0))
        assert len(db.call(db.events, "cam")) == 3
    finally:
        db.close()


def test_an_event_without_a_picture_takes_the_next_frame_and_never_loses_one(tmp_path):
    """On a busy machine the first detection's frame may be gone from the decoder: the event
    must not stay without a picture, and a later missing frame must not erase the picture."""
    kept = {2: frame(200, 64, 48)}  # frames 1 and 3 have already left the decoder
    db, log = event_log(tmp_path, [], frames=lambda sid, seq: kept.get(seq))
    try:
        log.handle(person_seen("cam", 1000.0, seq=1))
        event_id = db.call(db.events, "cam")[0].id
        assert db.call(db.event_snapshot, event_id) is None
        log.handle(person_seen("cam", 1000.2, seq=2, confidence=0.8))
        picture = db.call(db.event_snapshot, event_id)
        assert picture is not None and picture[:2] == b"\xff\xd8"
        log.handle(person_seen("cam", 1003.0, seq=3, confidence=0.99))  # better, but no frame
        assert db.call(db.event_snapshot, event_id) == picture
        assert db.call(db.events, "cam")[0].confidence == 0.8, "box and picture stay together"
    finally:
        db.close()


def test_a_result_for_a_closed_stream_is_dropped():
    """A frame still in the model when its stream closed must not open events afterwards."""
    delivered = []
    runner = InferenceRunner(DetectorSpec(), batch_size=1, deadline=10, memory_limit=1 << 30,
                             motion_gate=False, on_result=delivered.append)
    message = {"op": "result", "stream": "cam", "seq": 1, "pts": 0, "wall": time.time(),
               "detections": [("person", 0.9, (0.1, 0.1, 0.5, 0.9))], "latency": 0.01,
               "called": True, "skipped": 0}
    runner.open_stream("cam", 64 * 64 * 3)
    runner._handle(message)
    runner.close_stream("cam")
    runner._handle(message)
    assert [r.stream_id for r in delivered] == ["cam"]


def test_motion_gate_looks_again_at_a_new_picture_with_something_in_it():
    """Confirmation needs three calls' scores (confirm.py): a still picture with a person
    gets them, one with nothing in it costs one call."""
    gate = MotionGate()
    scene = np.full((90, 160, 3), 100, np.uint8)
    assert gate.should_run(scene, 0.0)
    gate.found(True)
    looks = [gate.should_run(scene, 0.2 * t) for t in range(1, 10)]
    assert looks[:2] == [True, True] and not any(looks[2:]), looks
    gate.found(True)  # a look again that found it too: no more looks
    assert not gate.should_run(scene, 2.0)
    empty = MotionGate()
    assert empty.should_run(scene, 0.0)
    empty.found(False)
    assert not any(empty.should_run(scene, 0.2 * t) for t in range(1, 10))
