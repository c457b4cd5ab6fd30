"""The event log with tracked objects, zones and masks on a real SQLite file and a fake
clock: one event per object, what rows and messages say, masks, zone-limited record_on,
stationary objects, the motion gate's mask, and an older database migrated in place."""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np

from streamwarden.db import Database
from streamwarden.inference.detection import Detection
from streamwarden.inference.event_log import EventLog
from streamwarden.inference.motion import MotionGate
from streamwarden.inference.runner import FrameResult
from streamwarden.inference.zones import Scene

DRIVEWAY = [(0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0)]
TOP_LEFT = [(0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5)]


class Harness:
    def __init__(self, tmp_path, record_on=("person@driveway",), **settings):
        self.db = Database(tmp_path / "index.db")
        self.messages: list[dict] = []
        self.recorded: list[str] = []
        self.frame = np.full((48, 64, 3), 90, np.uint8)
        self.log = EventLog(self.db, model_name=lambda: "scripted", event_gap=1.0,
                            classes=None, record_on=list(record_on),
                            frame_lookup=lambda sid, seq: self.frame,
                            publish=self.messages.append, record=self.recorded.append,
                            fps=5, **settings)
        self.log.configure("cam", Scene([("driveway", DRIVEWAY)], [TOP_LEFT]), None)
        self.seq = 0

    def see(self, wall: float, *detections: Detection, called: bool = True) -> None:
        self.seq += 1
        self.log.handle(FrameResult("cam", self.seq, self.seq * 1000, wall, list(detections),
                                    0.01, called, 0))

    def rows(self):
        self.db.call(lambda: None)  # every queued write has run
        return self.db.call(self.db.events, "cam")

    def of_type(self, kind: str) -> list[dict]:
        self.db.call(lambda: None)
        return [m for m in self.messages if m["type"] == kind]


def person(x: float, y: float = 0.5, confidence: float = 0.9) -> Detection:
    return Detection("person", confidence, (x, y, x + 0.1, y + 0.4))


def test_an_object_crossing_into_a_zone_is_one_event_that_says_when(tmp_path):
    h = Harness(tmp_path)
    try:
        for i in range(30):  # feet from x = 0.1 to 0.68, below the mask
            h.see(100 + i * 0.2, person(0.05 + 0.02 * i))
        [row] = h.rows()
        # an active object's row is brought up to date about once a second
        assert row.active and row.object_id and 25 <= row.detections < 30
        zones = json.loads(row.zones)
        assert [z["zone"] for z in zones] == ["driveway"]
        entered = 100 + 0.2 * 20  # feet at 0.05 + 0.4 + 0.05 = 0.5
        assert abs(zones[0]["entered"] - entered) < 0.21
        path = json.loads(row.path)
        assert path[0][0] == 100 and path[-1][1] >= 0.55 and len(path) >= 10
        # recordings only once the person stands in the driveway
        assert len(h.recorded) == 10, "record_on person@driveway: only while in the zone"
        h.see(106.0)  # the model looked, nobody there
        h.see(107.5)  # 1.5 s after the last sighting (event_gap 1 s): gone
        [row] = h.rows()
        assert not row.active and row.end_ts == 100 + 29 * 0.2 and row.detections == 30
        assert json.loads(row.path)[-1][1] > 0.65, "its final state is written when it ends"
        changes = [(m["change"], tuple(m["reasons"])) for m in h.of_type("event")]
        assert changes == [("new", ()), ("update", ("zone:driveway",)), ("end", ())]
        assert {m["object_id"] for m in h.of_type("event")} == {row.object_id}
        assert h.of_type("event")[-1]["event_id"] == row.id
        detection = h.of_type("detection")[-1]["detections"][0]
        assert detection["object_id"] == row.object_id and detection["zones"] == ["driveway"]
        assert h.db.call(h.db.events, None, None, None, None, 10, "driveway")[0].id == row.id
        assert h.db.call(h.db.events, None, None, None, None, 10, "porch") == []
    finally:
        h.db.close()


def test_a_masked_object_raises_nothing(tmp_path):
    h = Harness(tmp_path, record_on=("person",))
    try:
        for i in range(10):  # feet at (0.2..0.29, 0.45): inside the top-left mask
            h.see(100 + i * 0.2, person(0.15 + 0.01 * i, y=0.05))
        assert h.rows() == [] and h.recorded == [] and h.of_type("detection") == []
        assert h.log.latest("cam", max_age_s=1e12) == [], "no box drawn on live snapshots"
        h.log.configure("cam", Scene([("driveway", DRIVEWAY)]), None)  # the mask removed
        h.see(103.0, person(0.25, y=0.05))
        assert len(h.rows()) == 1 and h.recorded == ["cam"]
    finally:
        h.db.close()


def test_two_objects_two_events_and_a_parked_one_records_only_while_it_moves(tmp_path):
    h = Harness(tmp_path, record_on=("car",), stationary_after=2.0, stationary_timeout=60.0)
    try:
        car = Detection("car", 0.8, (0.55, 0.6, 0.85, 0.8))
        t = 100.0
        for i in range(10):  # a person walks by while the car pulls in
            h.see(t, person(0.05 + 0.02 * i, y=0.55),
                  Detection("car", 0.8, (0.3 + 0.025 * i, 0.6, 0.6 + 0.025 * i, 0.8)))
            t += 0.2
        for i in range(60 * 5):  # parked for a minute; gated or missed now and then
            called = i % 50 >= 25
            h.see(t, *([car] if called and i % 50 < 40 else []), called=called)
            t += 0.2
        rows = h.rows()
        assert sorted(r.label for r in rows) == ["car", "person"]
        car_row = next(r for r in rows if r.label == "car")
        assert car_row.active and car_row.stationary
        assert not next(r for r in rows if r.label == "person").active
        assert len(h.recorded) < 40, "a parked car does not extend the recording for a minute"
        reasons = [m["reasons"] for m in h.of_type("event") if m["label"] == "car"]
        assert ["stationary"] in reasons
        h.log.forget("cam")  # the stream is removed: its objects end
        h.log.expire(t)
        assert not any(r.active for r in h.rows())
    finally:
        h.db.close()


def test_an_unconfirmed_object_raises_nothing_and_a_confirmed_one_starts_when_first_seen(
        tmp_path):
    """`event_score`: a box flickering at 0.36-0.42 (the INT8 clock overlay) is shown in
    `detection` messages as unconfirmed but opens no row, sends no `event`, records nothing
    and is not counted; a person is an event from the second call, starting at the first."""
    h = Harness(tmp_path, record_on=("person",), event_score=0.45)
    try:
        clock = [0.37, 0.40, 0.42, 0.36, 0.39]
        for i in range(25):
            h.see(100 + i * 0.2, Detection("person", clock[i % 5], (0.6, 0.0, 0.69, 0.29)))
        assert h.rows() == [] and h.of_type("event") == [] and h.recorded == []
        assert h.log.stats() == {"events_opened": 0, "objects_tracked": 0}
        detections = [d for m in h.of_type("detection") for d in m["detections"]]
        assert len(detections) == 25 and not any(d["confirmed"] for d in detections)
        h.see(106.0, person(0.6), Detection("person", 0.4, (0.6, 0.0, 0.69, 0.29)))
        assert h.rows() == [] and h.recorded == [], "one sighting is not an event"
        h.see(106.2, person(0.61), Detection("person", 0.38, (0.6, 0.0, 0.69, 0.29)))
        [row] = h.rows()
        assert row.start_ts == 106.0 and row.detections == 2 and row.end_ts == 106.2
        assert json.loads(row.path)[0][0] == 106.0, "the path runs from the first sighting"
        [new] = h.of_type("event")
        assert new["change"] == "new" and new["start"] == 106.0 and new["event_id"] == row.id
        assert h.recorded == ["cam"], "recorded from confirmation (the pre-roll has the rest)"
        last = h.of_type("detection")[-1]["detections"]
        assert sorted(d["confirmed"] for d in last) == [False, True]
        assert h.log.stats() == {"events_opened": 1, "objects_tracked": 1}
        h.see(108.0)  # both gone: only the person's event ends
        assert [m["change"] for m in h.of_type("event")] == ["new", "end"]
    finally:
        h.db.close()


def test_a_stream_with_no_results_still_closes_its_events(tmp_path):
    h = Harness(tmp_path)
    try:
        h.see(time.time() - 10, person(0.6))
        assert h.rows()[0].active
        h.log.expire()  # what the service calls every second
        assert not h.rows()[0].active
    finally:
        h.db.close()


def test_motion_inside_a_mask_does_not_wake_the_model():
    still = np.random.default_rng(2).integers(0, 255, (90, 160, 3), dtype=np.uint8)
    gate = MotionGate(refresh_s=100.0, mask=[TOP_LEFT])
    assert gate.should_run(still, 0.0)
    swaying = still.copy()
    swaying[5:40, 10:70] = 255 - swaying[5:40, 10:70]  # a tree in the masked corner
    assert not gate.should_run(swaying, 0.2)
    walking = swaying.copy()
    walking[50:85, 100:140] = 255 - walking[50:85, 100:140]
    assert gate.should_run(walking, 0.4)
    gate.set_mask([])  # the mask removed: the corner counts again
    assert gate.should_run(still, 0.6)
    everything = MotionGate(refresh_s=100.0, mask=[[(0, 0), (1, 0), (1, 1), (0, 1)]])
    everything.should_run(still, 0.0)
    assert not everything.should_run(walking, 0.2)


def test_an_older_database_gains_the_new_columns(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL,
            label TEXT NOT NULL, start_ts REAL NOT NULL, end_ts REAL NOT NULL,
            confidence REAL NOT NULL, box TEXT NOT NULL, detections INTEGER NOT NULL,
            model TEXT NOT NULL, pts INTEGER, snapshot BLOB);
        INSERT INTO events (stream_id, label, start_ts, end_ts, confidence, box, detections,
            model) VALUES ('cam', 'person', 1, 2, 0.9, '[0, 0, 1, 1]', 3, 'old');
    """)
    conn.commit()
    conn.close()
    db = Database(path)
    try:
        [row] = db.call(db.events, "cam")
        assert (row.object_id, row.zones, row.path, row.stationary, row.active) == (
            None, "[]", "[]", False, False)
        assert row.detections == 3 and row.model == "old"
        new_id = db.call(db.event_opened, "cam", "car", 5, 0.8, "[0, 0, 1, 1]", "m", None,
                         None, "abc", "[]", "[]")
        assert db.call(db.event, new_id).active
    finally:
        db.close()
    reopened = Database(path)  # a restart: nothing is tracked any more
    try:
        assert not any(r.active for r in reopened.call(reopened.events, "cam"))
    finally:
        reopened.close()
