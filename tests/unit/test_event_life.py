"""A detection event's life as notifications: start (with its row id), update (a better
picture), end (quiet for `event_gap`, found by `expire` or by the next detection, or its
stream removed). Real SQLite, hand-made results, times passed in."""

from __future__ import annotations

import time

import numpy as np

from streamwarden.db import Database
from streamwarden.inference.detection import Detection
from streamwarden.inference.event_log import EventLog
from streamwarden.inference.runner import FrameResult

T = 1000.0


def seen(stream_id: str, wall: float, confidence: float = 0.6, label: str = "person",
         seq: int = 1) -> FrameResult:
    return FrameResult(stream_id, seq, 0, wall,
                       [Detection(label, confidence, (0.1, 0.1, 0.5, 0.9))], 0.01, True, 0)


def make_log(tmp_path, published: list[dict]) -> tuple[Database, EventLog]:
    db = Database(tmp_path / "index.db")
    picture = np.full((48, 64, 3), 128, np.uint8)
    log = EventLog(db, model_name=lambda: "test-model", event_gap=5.0, classes=None,
                   record_on=[], frame_lookup=lambda sid, seq: picture,
                   publish=published.append, record=lambda sid: None)
    return db, log


def life(published: list[dict]) -> list[tuple]:
    """What matters of each event message, once the database thread has caught up."""
    return [(m["type"], m["stream_id"], m["label"], m["event_id"], m["start"], m["end"],
             m["detections"], m.get("reason")) for m in published if m["type"] != "detection"]


def last_event(published: list[dict]) -> dict:
    """The latest event message (detection messages come from another thread: any order)."""
    return [m for m in published if m["type"].startswith("event_")][-1]


def settle(db: Database) -> None:
    db.call(lambda: None)  # every statement before this one has run (and its callbacks)


def test_start_update_end_with_the_rows_id(tmp_path):
    published: list[dict] = []
    db, log = make_log(tmp_path, published)
    try:
        log.handle(seen("cam", T, 0.6))
        log.handle(seen("cam", T + 1.0, 0.65))  # not enough better: no update
        log.handle(seen("cam", T + 2.5, 0.9))  # better, 2.5 s after the picture: update
        log.handle(seen("cam", T + 3.0, 0.99))  # better still, but within 2 s: no update
        log.expire(T + 7.9)  # 4.9 s quiet: still going
        settle(db)
        [row] = db.call(db.events, "cam")
        assert life(published) == [
            ("event_start", "cam", "person", row.id, T, T, 1, None),
            ("event_update", "cam", "person", row.id, T, T + 2.5, 3, None)]
        assert last_event(published)["confidence"] == 0.9
        assert last_event(published)["model"] == "test-model"
        log.expire(T + 8.1)
        settle(db)
        assert life(published)[-1] == ("event_end", "cam", "person", row.id, T, T + 3.0, 4,
                                       "gap")
        assert last_event(published)["confidence"] == 0.9, "the best detection's, as in the row"
        log.expire(T + 100)
        assert len(life(published)) == 3, "an event ends once"
        log.handle(seen("cam", T + 9.0))
        settle(db)
        assert life(published)[-1][0] == "event_start", "a new event after the end"
        assert life(published)[-1][3] != row.id
    finally:
        db.close()


def test_the_next_detection_ends_a_quiet_event_before_opening_a_new_one(tmp_path):
    published: list[dict] = []
    db, log = make_log(tmp_path, published)
    try:
        log.handle(seen("cam", T))
        log.handle(seen("cam", T + 6.0))  # `expire` did not run in between
        settle(db)
        kinds = [(m[0], m[3]) for m in life(published)]
        first, second = kinds[0][1], kinds[2][1]
        assert kinds == [("event_start", first), ("event_end", first), ("event_start", second)]
    finally:
        db.close()


def test_removing_a_stream_ends_its_events_only(tmp_path):
    published: list[dict] = []
    db, log = make_log(tmp_path, published)
    try:
        log.handle(seen("cam", T))
        log.handle(seen("cam", T, label="car"))
        log.handle(seen("other", T))
        log.forget("cam")
        settle(db)
        ends = [(m[1], m[2], m[7]) for m in life(published) if m[0] == "event_end"]
        assert sorted(ends) == [("cam", "car", "stream_removed"),
                                ("cam", "person", "stream_removed")]
        log.expire(time.time())
        settle(db)
        ends = [(m[1], m[7]) for m in life(published) if m[0] == "event_end"]
        assert ends[-1] == ("other", "gap") and len(ends) == 3
    finally:
        db.close()
