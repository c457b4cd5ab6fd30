"""Tiered retention end to end: a real camera recorded continuously, the worker process running
the scripted detector (a person who comes and goes, then a car that stays), the service's own
retention runs (after every closed segment), the timeline and the events API."""

from __future__ import annotations

import time

from streamwarden.config.model import RecordingSection
from streamwarden.recording.retention import enforce
from tests.conftest import wait_for
from tests.test_objects import events, objects_config, scripted  # noqa: F401 (fixture)
from tests.test_timeline import gaps_of, tiles, timeline, ts

# detector time (s): a person from 4 to 6 s (footage 3-7 s with 1 s of pre/post-roll), a car
# from 12 s on (an open event: footage from 11 s, for as long as it stays)
PERSON = {"label": "person", "from": [0.1, 0.2, 0.2, 0.6], "start": 4.0, "end": 6.0}
CAR = {"label": "car", "from": [0.5, 0.6, 0.8, 0.9], "start": 12.0}


def settled_since(start: float) -> float:
    """An end for a timeline from `start` that leaves out the last 2 s (still being written)
    and is after `start`: on a busy machine the car's footage may have begun under 2 s ago."""
    time.sleep(max(0.0, start + 2.5 - time.time()))
    return time.time() - 2


def test_continuous_footage_goes_first_event_and_open_event_footage_stay(
        camera_factory, service_factory, tmp_path, scripted):  # noqa: F811
    scripted(PERSON, CAR)
    camera = camera_factory(["/cam"])
    config = objects_config(tmp_path, camera.url(), pre_roll=1.0, post_roll=1.0)
    svc = service_factory(config.model_copy(update={
        "recording": RecordingSection(base_path=str(tmp_path / "rec"), segment_duration="1s",
                                      retention="4s", event_retention="1h"),
        "streams": [config.streams[0].model_copy(update={"enable_recording": True})]}))
    client = svc.client()
    began = time.time()

    [person] = wait_for(lambda: [e for e in events(client, label="person") if not e["active"]],
                        30, message="the person's event closes")
    [car] = wait_for(lambda: events(client, label="car"), 20, message="the car's event")
    assert car["active"]
    pstart, pend = ts(person["footage_start"]), ts(person["footage_end"])
    assert pstart == ts(person["start"]) - 1.0 and pend == ts(person["end"]) + 1.0
    car_from = ts(car["footage_start"])

    def deleted_around_person() -> list[tuple[float, float]]:
        items = tiles(timeline(client, "cam", began - 1))
        deleted = gaps_of(items, "deleted")
        before = [g for g in deleted if g[1] <= pstart]
        between = [g for g in deleted if g[0] >= pend and g[1] <= car_from]
        return deleted if before and between else []

    deleted = wait_for(deleted_around_person, 20, interval=0.5,
                       message="continuous footage before and after the person deleted")
    # the person's footage and everything since the car came are all there
    for start, end in deleted:
        assert end <= pstart or pend <= start <= end <= car_from, (deleted, pstart, pend)
    person_items = tiles(timeline(client, "cam", pstart, pend))
    assert [what for *_, what in person_items] == ["covered"], person_items
    car_items = tiles(timeline(client, "cam", car_from, settled_since(car_from)))
    assert [what for *_, what in car_items] == ["covered"], car_items

    # two hours later: the person's footage and its event row are past event_retention; the
    # car is still there, so its footage (from its pre-roll on) and its event stay
    service = svc.service
    db = service.db
    limits = service.storage_limits
    assert db.call(enforce, db, 4.0, None, time.time() + 7200, service.gaps, 3600.0,
                   limits.padding) >= 1
    [(start, end, what)] = tiles(timeline(client, "cam", pstart, pend))
    assert what == "deleted"
    assert [e["id"] for e in events(client)] == [car["id"]]
    car_items = tiles(timeline(client, "cam", car_from, settled_since(car_from)))
    assert [what for *_, what in car_items] == ["covered"], car_items
