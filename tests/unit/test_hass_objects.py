"""Home Assistant's "<label> detected" sensors follow `[mqtt] objects` as the detection topic
does: a person outside the chosen zones turns no sensor on, nor does an object not yet
confirmed as an event. A real MqttBridge (never
connected); only what it would send is recorded."""

from __future__ import annotations

import asyncio

from streamwarden.config.model import MqttSection
from streamwarden.hass.bridge import HassBridge
from streamwarden.mqtt import MqttBridge


class Cameras:
    """The service's controls, as far as the bridge reaches them here."""

    def stream_ids(self) -> list[str]:
        return ["cam"]

    async def snapshot(self, stream_id: str) -> bytes | None:
        return None


def detection(label: str, zones: list[str], confirmed: bool = True) -> dict:
    return {"type": "detection", "stream_id": "cam", "model": "m", "time": 1.0, "pts": 0,
            "detections": [{"label": label, "confidence": 0.9, "box": [0, 0, 1, 1],
                            "object_id": "o1", "zones": zones, "confirmed": confirmed}]}


def sent_on(objects: list[str] | None, *messages: dict) -> list[str]:
    mqtt = MqttBridge(MqttSection(host="127.0.0.1", objects=objects))
    sent: list[str] = []
    mqtt.send = lambda topic, payload, retain=False, qos=1: sent.append(topic)  # type: ignore

    async def run() -> None:
        bridge = HassBridge(mqtt, Cameras(), ["person", "car"], 30.0, 10.0,  # type: ignore
                            "homeassistant")
        for message in messages:
            bridge.handle(message)
        await asyncio.gather(*bridge._pending)

    asyncio.run(run())
    return [topic for topic in sent if topic.endswith("/detected")]


def test_mqtt_objects_limit_the_detected_sensors():
    walker, parked = detection("person", ["street"]), detection("car", ["driveway"])
    assert sent_on(None, walker, parked) == ["streamwarden/cam/person/detected",
                                             "streamwarden/cam/car/detected"]
    assert sent_on(["person@driveway", "car"], walker, parked) == [
        "streamwarden/cam/car/detected"]
    assert sent_on(["person@driveway"], walker) == []


def test_an_unconfirmed_object_turns_no_sensor_on():
    """The event log marks boxes of objects not yet confirmed as events (inference/confirm.py);
    a weak box the model flickers on must not notify, as it raises no event."""
    assert sent_on(None, detection("person", [], confirmed=False)) == []
    assert sent_on(None, detection("person", [], confirmed=False), detection("person", [])) \
        == ["streamwarden/cam/person/detected"]


def test_sensor_labels_from_record_on_are_labels_not_selectors():
    section = MqttSection(host="127.0.0.1")
    assert section.labels(["person@driveway", "car", "person@porch", "*@yard"]) == [
        "person", "car"]
    assert section.labels(["*@yard"]) == ["person"]
    assert MqttSection(host="127.0.0.1", detection_labels=["dog"]).labels(["person"]) == ["dog"]
