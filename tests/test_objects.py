"""Tracked objects, zones and masks end to end: a real camera, the service, the worker process
running a scripted detector (tests/plugins/detectors.py: boxes that move as a script says,
so object motion is deterministic and cheap), the events API, WebSocket, MQTT, recordings,
and the zones API with its bad input."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime

import pytest
from websockets.sync.client import connect

from streamwarden.config.model import (
    AppSection,
    Config,
    InferenceSection,
    MqttSection,
    RecordingSection,
    SourceSettings,
    StreamConfig,
)
from streamwarden.config.zones import ZoneConfig
from tests.conftest import REPO, free_port, state_of, wait_for

FAST = SourceSettings(timeout=2, restart_timeout=1, buffer_duration=4)
RIGHT_HALF = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
TOP_LEFT = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]]
# a person walks from the left into the right half (feet cross x = 0.5 at about 5.1 s) and
# leaves the picture at 7 s; a car stands parked on the left from the start
PERSON = {"label": "person", "from": [0.1, 0.2, 0.18, 0.55], "to": [0.8, 0.2, 0.88, 0.55],
          "start": 3.0, "end": 7.0}
PARKED_CAR = {"label": "car", "from": [0.05, 0.6, 0.35, 0.85]}


@pytest.fixture
def scripted(monkeypatch):
    """Let the worker import tests.plugins and give it a script."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))

    def script(*objects: dict) -> None:
        monkeypatch.setenv("SCRIPTED_DETECTOR", json.dumps(list(objects)))

    return script


def objects_config(tmp_path, uri: str, *, zones=(), masks=(), **inference) -> Config:
    return Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec")),
        stream_defaults=FAST,
        # the script moves boxes the camera's pixels do not show: the activity gate (which
        # judges the compressed stream) would see a still scene and offer one frame per GOP
        inference=InferenceSection(plugin="tests.plugins.detectors:ScriptedDetector",
                                   **{"event_gap": 1.0, "activity_gate": False, **inference}),
        streams=[StreamConfig(id="cam", uri=uri, enable_inference=True,
                              zones=[ZoneConfig(name=n, points=p) for n, p in zones],
                              masks=list(masks))])


def events(client, **params) -> list[dict]:
    return client.get("/events", params=params).json()


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_tracked_objects_zones_recording_and_messages(camera_factory, service_factory,
                                                      tmp_path, scripted):
    """One event per object: a person crossing into the driveway (zone entry, path, closed
    when gone) and a car parked outside it (stationary, still open); record_on and MQTT
    limited to the driveway; WebSocket messages carry the object ids."""
    from tests.test_mqtt import MOSQUITTO, Broker, Subscriber

    if not os.path.exists(MOSQUITTO):
        pytest.skip("mosquitto not installed (scripts/setup.sh installs it)")
    scripted(PERSON, PARKED_CAR)
    port = free_port()
    broker = Broker(tmp_path, port)
    broker.start()
    subscriber = Subscriber(port)
    try:
        camera = camera_factory(["/cam"])
        config = objects_config(tmp_path, camera.url(), zones=[("driveway", RIGHT_HALF)],
                                record_on=["car@driveway", "person@driveway"],
                                stationary_after=1.5, pre_roll=1.0, post_roll=1.0)
        config = config.model_copy(update={"mqtt": MqttSection(
            host="127.0.0.1", port=port, objects=["person@driveway", "car@driveway"])})
        svc = service_factory(config)
        client = svc.client()
        with connect(f"ws://127.0.0.1:{svc.port}/ws") as ws:
            [car] = wait_for(lambda: events(client, label="car"), 30, message="the car")
            assert not state_of(client, "cam")["health"]["recording"], \
                "a car outside the driveway does not record"
            wait_for(lambda: state_of(client, "cam")["health"]["recording"], 15,
                     message="the person in the driveway starts a recording")
            person = wait_for(lambda: [e for e in events(client, label="person")
                                       if not e["active"]], 15,
                              message="the person's event closes after it left")
            messages = _drain(ws, 2.0)
        [person] = person
        assert len(events(client)) == 2, "one event per object"
        assert person["object_id"] and person["object_id"] != car["object_id"]
        [entry] = person["zones"]
        assert entry["zone"] == "driveway"
        assert 1.5 < ts(entry["entered"]) - ts(person["start"]) < 3.0  # 2.1 s in the script
        assert 3.0 < ts(person["end"]) - ts(person["start"]) < 4.5
        xs = [p["x"] for p in person["path"]]
        assert len(xs) >= 8 and xs == sorted(xs) and xs[0] < 0.25 and xs[-1] > 0.7
        [car] = events(client, label="car")
        assert car["active"] and car["stationary"] and car["zones"] == []
        assert client.get("/events", params={"zone": "driveway"}).json() == [person]
        _check_messages(messages, person, car)
        mqtt = [json.loads(p) for p in subscriber.payloads("streamwarden/cam/event")]
        assert mqtt and {m["label"] for m in mqtt} == {"person"}, "only objects in the zone"
        assert mqtt[-1]["change"] == "end" and mqtt[-1]["object_id"] == person["object_id"]
        recordings = wait_for(lambda: [r for r in client.get("/recordings").json()
                                       if r["status"] == "complete"], 10,
                              message="the event recording closes after its post-roll")
        assert [r["reason"] for r in recordings] == ["event"]
    finally:
        subscriber.close()
        broker.kill()


def _drain(ws, seconds: float) -> list[dict]:
    """What the WebSocket brings within `seconds` (the backlog arrives at once; the parked
    car's detections keep coming, so there is no quiet moment to wait for)."""
    messages = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            messages.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return messages


def _check_messages(messages: list[dict], person: dict, car: dict) -> None:
    changes = [(m["label"], m["change"], tuple(m["reasons"])) for m in messages
               if m["type"] == "event"]
    assert [c for c in changes if c[0] == "person"] == [
        ("person", "new", ()), ("person", "update", ("zone:driveway",)), ("person", "end", ())]
    assert ("car", "update", ("stationary",)) in changes
    ids = {m["object_id"] for m in messages if m["type"] == "event"}
    assert ids == {person["object_id"], car["object_id"]}
    boxes = [d for m in messages if m["type"] == "detection" for d in m["detections"]]
    assert {d["object_id"] for d in boxes} == ids
    assert any(d["zones"] == ["driveway"] for d in boxes if d["label"] == "person")


def test_masks_hide_an_object_and_zones_change_in_place(camera_factory, service_factory,
                                                        tmp_path, scripted):
    """A person moving about inside a mask raises nothing; the mask removed through the API,
    the next frames see them, without restarting the camera. Bad zones are 422s."""
    scripted({"label": "person", "from": [0.05, 0.05, 0.15, 0.3],
              "to": [0.35, 0.1, 0.45, 0.35], "start": 0.0, "end": 60.0})
    camera = camera_factory(["/cam"])
    svc = service_factory(objects_config(tmp_path, camera.url(), masks=[TOP_LEFT]))
    client = svc.client()
    wait_for(lambda: (state_of(client, "cam")["health"]["inference"] or {})
             .get("detections", 0) >= 10, 30, message="the detector reports the person")
    assert events(client) == [], "the person stands in the mask"
    before = state_of(client, "cam")
    zones = client.get("/streams/cam/zones").json()
    assert zones == {"zones": [], "masks": [TOP_LEFT]}
    new = {"zones": [{"name": "garden", "points": TOP_LEFT}], "masks": []}
    answer = client.put("/streams/cam/zones", json=new)
    assert answer.status_code == 200 and answer.json() == new
    [event] = wait_for(lambda: events(client), 10, message="seen once the mask is gone")
    assert event["zones"][0]["zone"] == "garden"
    after = state_of(client, "cam")
    assert after["health"]["retry_count"] == before["health"]["retry_count"] == 0
    assert after["statistics"]["frames"] > before["statistics"]["frames"], "never restarted"
    assert client.get("/streams/cam/zones").json() == new
    _check_bad_zones(client)


def _check_bad_zones(client) -> None:
    def refused(body: dict, *words: str) -> None:
        answer = client.put("/streams/cam/zones", json=body)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert answer.json()["error"] == "invalid_request"
        assert all(word in detail for word in words), detail

    refused({"zones": [{"name": "bow", "points": [[0.2, 0.2], [0.6, 0.6], [0.6, 0.2],
                                                   [0.2, 0.6]]}]}, "self-intersecting")
    refused({"masks": [[[0.1, 0.1], [1.2, 0.1], [0.5, 0.9]]]}, "masks.0", "outside the frame")
    refused({"zones": [{"name": "a", "points": [[0, 0], [1, 1]]}]}, "at least 3 points")
    refused({"zones": [{"name": "a", "points": TOP_LEFT}, {"name": "a", "points": RIGHT_HALF}]},
            "defined twice")
    refused({"zones": [{"name": "no spaces", "points": TOP_LEFT}]}, "zones.0.name")
    answer = client.patch("/streams/cam", json={"record_on": ["person@nowhere"]})
    assert answer.status_code == 422 and "no zone 'nowhere'" in answer.json()["detail"]
    assert client.patch("/streams/cam", json={"record_on": ["person@garden"]}).json()[
        "record_on"] == ["person@garden"]
    refused({"zones": [], "masks": []}, "record_on 'person@garden'", "no zone 'garden'")
    assert client.get("/streams/cam/zones").json()["zones"][0]["name"] == "garden", \
        "a refused change changes nothing"
    assert client.put("/streams/nope/zones", json={}).status_code == 404
