"""A tracked object's event life as `event` notifications (hooks and webhooks call them
event_start, event_update, event_end): new with its row's id, update (a better picture, a
zone, stationary), end once (not seen for `event_gap`, found by `expire` or by the next
result; its stream dark or removed). Real SQLite, hand-made results, times passed in."""

from __future__ import annotations

import time

import numpy as np

from streamwarden.db import Database
from streamwarden.inference.detection import Detection
from streamwarden.inference.event_log import EventLog
from streamwarden.inference.runner import FrameResult

T = 1000.0
BOX = (0.1, 0.1, 0.5, 0.9)


def seen(stream_id: str, wall: float, confidence: float = 0.6, label: str = "person",
         seq: int = 1, box: tuple[float, float, float, float] = BOX) -> FrameResult:
    return FrameResult(stream_id, seq, 0, wall, [Detection(label, confidence, box)], 0.01,
                       True, 0)


def nothing(stream_id: str, wall: float) -> FrameResult:
    """The model looked and found nothing."""
    return FrameResult(stream_id, 1, 0, wall, [], 0.01, True, 0)


def make_log(tmp_path, published: list[dict], **settings) -> tuple[Database, EventLog]:
    db = Database(tmp_path / "index.db")
    picture = np.full((48, 64, 3), 128, np.uint8)
    log = EventLog(db, model_name=lambda: "test-model", event_gap=5.0, classes=None,
                   record_on=[], frame_lookup=lambda sid, seq: picture,
                   publish=published.append, record=lambda sid: None, **settings)
    return db, log


def life(published: list[dict]) -> list[tuple]:
    """What matters of each event message, once the database thread has caught up."""
    return [(m["change"], m["stream_id"], m["label"], m["event_id"], m["start"], m["end"],
             m["detections"], m.get("reason")) for m in published if m["type"] == "event"]


def last_event(published: list[dict]) -> dict:
    """The latest event message (detection messages come from another thread: any order)."""
    return [m for m in published if m["type"] == "event"][-1]


def settle(db: Database) -> None:
    db.call(lambda: None)  # every statement before this one has run (and its callbacks)


def test_new_update_end_with_the_rows_id(tmp_path):
    published: list[dict] = []
    db, log = make_log(tmp_path, published)
    try:
        log.handle(seen("cam", T, 0.6))
        log.handle(seen("cam", T + 1.0, 0.65))  # better, but within 2 s of the picture
        log.handle(seen("cam", T + 2.5, 0.9))  # better, 2.5 s after the picture: update
        log.handle(seen("cam", T + 3.0, 0.99))  # better still, but within 2 s: no update
        log.expire(T + 7.9)  # 4.9 s unseen: still going
        settle(db)
        [row] = db.call(db.events, "cam")
        assert life(published) == [
            ("new", "cam", "person", row.id, T, T, 1, None),
            ("update", "cam", "person", row.id, T, T + 2.5, 3, None)]
        assert last_event(published)["reasons"] == ["picture"]
        assert last_event(published)["confidence"] == 0.9
        assert last_event(published)["model"] == "test-model"
        log.expire(T + 8.1)
        settle(db)
        assert life(published)[-1] == ("end", "cam", "person", row.id, T, T + 3.0, 4, "gap")
        assert last_event(published)["confidence"] == 0.9, "the best picture's, as in the row"
        assert db.call(db.event, row.id).confidence == 0.9
        log.expire(T + 100)
        assert len(life(published)) == 3, "an event ends once"
        log.handle(seen("cam", T + 9.0))
        settle(db)
        assert life(published)[-1][0] == "new", "a new event after the end"
        assert life(published)[-1][3] != row.id
    finally:
        db.close()


def test_the_next_result_ends_a_quiet_object_before_opening_a_new_one(tmp_path):
    published: list[dict] = []
    db, log = make_log(tmp_path, published)
    try:
        log.handle(seen("cam", T))
        log.handle(seen("cam", T + 6.0))  # `expire` did not run in between
        settle(db)
        kinds = [(m[0], m[3]) for m in life(published)]
        first, second = kinds[0][1], kinds[2][1]
        assert kinds == [("new", first), ("end", first), ("new", second)]
        assert first != second
    finally:
        db.close()


def test_removing_a_stream_ends_its_events_only(tmp_path):
    published: list[dict] = []
    db, log = make_log(tmp_path, published)
    try:
        log.handle(FrameResult("cam", 1, 0, T, [Detection("person", 0.6, BOX),
                                                Detection("car", 0.7, (0.6, 0.5, 0.9, 0.8))],
                               0.01, True, 0))
        log.handle(seen("other", T))
        log.forget("cam")
        settle(db)
        ends = [(m[1], m[2], m[7]) for m in life(published) if m[0] == "end"]
        assert sorted(ends) == [("cam", "car", "stream_removed"),
                                ("cam", "person", "stream_removed")]
        log.expire(time.time())
        settle(db)
        ends = [(m[1], m[7]) for m in life(published) if m[0] == "end"]
        assert ends[-1] == ("other", "gap") and len(ends) == 3
    finally:
        db.close()


def test_a_dark_camera_ends_even_a_parked_object(tmp_path):
    """A stationary object the model misses now and then lasts `stationary_timeout`; once its
    stream sends no result at all for `event_gap` nothing vouches for it: it ends."""
    published: list[dict] = []
    db, log = make_log(tmp_path, published, stationary_after=2.0, stationary_timeout=600.0)
    try:
        t = T
        for _ in range(20):  # parked: the same box for 4 s
            log.handle(seen("cam", t, label="car"))
            t += 0.2
        for _ in range(50):  # missed for 10 s (twice event_gap): still parked
            log.handle(nothing("cam", t))
            t += 0.2
        log.expire(t)
        settle(db)
        assert [m[0] for m in life(published)] == ["new", "update"]
        assert last_event(published)["stationary"] is True
        log.expire(t + 4.7)  # the last result was at t - 0.2: within event_gap
        settle(db)
        assert life(published)[-1][0] == "update"
        log.expire(t + 4.9)
        settle(db)
        assert life(published)[-1][0] == "end" and life(published)[-1][7] == "gap"
        [row] = db.call(db.events, "cam")
        assert not row.active and row.stationary and row.end_ts < T + 4.0
    finally:
        db.close()


def test_idle_keyframes_noted_on_the_camera_thread_keep_an_object_until_expire(tmp_path):
    """`unchanged` (the decoder skipped an idle keyframe: same picture) only notes the time;
    `expire` applies it first, so a person standing still past `event_gap` stays, and one
    whose stream stops saying so ends `event_gap` later."""
    published: list[dict] = []
    db, log = make_log(tmp_path, published)
    try:
        log.handle(seen("cam", T))
        log.handle(seen("cam", T + 0.2))
        for second in range(1, 12):  # 11 s of still keyframes, one a second
            log.unchanged("cam", T + second)
            log.expire(T + second + 0.5)
        settle(db)
        assert [m[0] for m in life(published)] == ["new"], life(published)
        log.expire(T + 11 + 5.5)  # nothing noted since T + 11: gone after event_gap
        settle(db)
        assert [m[0] for m in life(published)][-1] == "end"
    finally:
        db.close()
