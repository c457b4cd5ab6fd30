"""Home Assistant discovery as data: every entity of a camera, its topics and unique ids, the
command topics the bridge listens on, and what a switch command may say."""

from __future__ import annotations

import json

from streamwarden.hass.discovery import (
    Topics,
    discovery_messages,
    parse_switch_payload,
    removal_topics,
    safe_id,
)

TOPICS = Topics(prefix="sw", discovery_prefix="homeassistant", node="streamwarden")


def by_topic(stream_id: str, labels: list[str]) -> dict[str, dict]:
    return dict(discovery_messages(TOPICS, stream_id, labels, off_delay=5))


def test_one_camera_has_a_camera_sensors_and_two_switches():
    messages = by_topic("front-door", ["person", "car"])
    base = "homeassistant/{}/streamwarden/front-door_{}/config"
    assert sorted(messages) == sorted([
        base.format("camera", "camera"), base.format("binary_sensor", "online"),
        base.format("binary_sensor", "person_detected"),
        base.format("binary_sensor", "car_detected"),
        base.format("switch", "recording"), base.format("switch", "detection")])
    camera = messages[base.format("camera", "camera")]
    assert camera["topic"] == "sw/front-door/snapshot"
    recording = messages[base.format("switch", "recording")]
    assert recording["state_topic"] == "sw/front-door/recording/state"
    assert recording["command_topic"] == "sw/front-door/recording/set"
    person = messages[base.format("binary_sensor", "person_detected")]
    assert person["state_topic"] == "sw/front-door/person/detected"
    assert person["off_delay"] == 5 and person["device_class"] == "occupancy"
    online = messages[base.format("binary_sensor", "online")]
    assert online["state_topic"] == "sw/front-door/online"
    assert online["device_class"] == "connectivity"


def test_every_entity_is_unique_available_with_the_service_and_on_one_device():
    payloads = list(by_topic("cam", ["person"]).values())
    unique = [p["unique_id"] for p in payloads]
    assert len(set(unique)) == len(unique) == 5
    assert all(u.startswith("streamwarden_cam_") for u in unique)
    for payload in payloads:
        assert payload["availability_topic"] == "sw/status"
        assert (payload["payload_available"], payload["payload_not_available"]) == (
            "online", "offline")
        assert payload["device"]["identifiers"] == ["streamwarden_cam_camera"]
        assert json.loads(json.dumps(payload)) == payload  # plain JSON, nothing else


def test_two_services_on_one_broker_do_not_collide():
    other = Topics(prefix="sw2", discovery_prefix="homeassistant", node="garage-box")
    mine = {p["unique_id"] for p in by_topic("cam", ["person"]).values()}
    theirs = {p["unique_id"] for _, p in discovery_messages(other, "cam", ["person"], 5)}
    assert not mine & theirs


def test_removal_clears_exactly_the_configs_that_were_announced():
    assert sorted(removal_topics(TOPICS, "cam", ["person"])) == sorted(by_topic("cam", ["person"]))


def test_commands_are_parsed_from_the_topic_and_anything_else_is_refused():
    assert TOPICS.command_filters() == ["sw/+/recording/set", "sw/+/detection/set"]
    assert TOPICS.parse_command("sw/cam/recording/set") == ("cam", "recording")
    assert TOPICS.parse_command("sw/cam/detection/set") == ("cam", "detection")
    for topic in ("sw/cam/recording/state", "sw/cam/lights/set", "other/cam/recording/set",
                  "sw//recording/set", "sw/a/b/recording/set"):
        assert TOPICS.parse_command(topic) is None, topic
    assert parse_switch_payload(b"ON") is True and parse_switch_payload(b" off\n") is False
    assert parse_switch_payload(b"true") is True and parse_switch_payload(b"0") is False
    assert parse_switch_payload(b"toggle") is None and parse_switch_payload(b"\xff") is None


def test_labels_and_client_ids_become_safe_topic_parts():
    assert safe_id("traffic light") == "traffic_light"
    assert safe_id("a/b+c#") == "a_b_c"
    messages = by_topic("cam", ["traffic light"])
    assert "homeassistant/binary_sensor/streamwarden/cam_traffic_light_detected/config" in messages
    sensor = messages["homeassistant/binary_sensor/streamwarden/cam_traffic_light_detected/config"]
    assert sensor["state_topic"] == "sw/cam/traffic_light/detected"
    assert sensor["name"] == "Traffic light detected"
