"""MQTT against a real Mosquitto broker: messages arrive; a broker outage harms nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from streamwarden.config.model import Config, MqttSection, StreamConfig
from tests.conftest import free_port, state_of, wait_for

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(not os.path.exists(MOSQUITTO),
                                reason="mosquitto not installed (scripts/setup.sh installs it)")


class Broker:
    def __init__(self, tmp_path, port: int):
        self.conf = tmp_path / "mosquitto.conf"
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


class Subscriber:
    def __init__(self, port: int, topics: tuple[str, ...] = ("streamwarden/#",)):
        self.messages: list[tuple[float, str, bytes]] = []
        self.lock = threading.Lock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        client.on_connect = lambda c, *_: [c.subscribe(t, qos=1) for t in topics]
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 1)
        client.connect_async("127.0.0.1", port)
        client.loop_start()
        self.client = client

    def _on_message(self, _client, _userdata, message) -> None:
        with self.lock:
            self.messages.append((time.time(), message.topic, message.payload))

    def topics(self) -> list[str]:
        with self.lock:
            return [topic for _, topic, _ in self.messages]

    def payloads(self, topic: str) -> list[str]:
        return [p.decode("utf-8", "replace") for p in self.raw(topic)]

    def raw(self, topic: str) -> list[bytes]:
        with self.lock:
            return [payload for _, t, payload in self.messages if t == topic]

    def last(self, topic: str) -> str | None:
        payloads = self.payloads(topic)
        return payloads[-1] if payloads else None

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_events_reach_the_broker_and_outages_are_harmless(tmp_path, service_factory,
                                                          camera_factory):
    port = free_port()
    broker = Broker(tmp_path, port)
    broker.start()
    subscriber = Subscriber(port)
    camera = camera_factory(["/cam"])
    try:
        svc = service_factory(Config(mqtt=MqttSection(host="127.0.0.1", port=port),
                                     streams=[StreamConfig(id="cam", uri=camera.url())]))
        client = svc.client()
        wait_for(lambda: "streamwarden/status" in subscriber.topics(), 10, message="online")
        assert subscriber.payloads("streamwarden/status")[-1] == "online"
        wait_for(lambda: any(json.loads(p)["state"] == "streaming"
                             for p in subscriber.payloads("streamwarden/cam/state")), 15,
                 message="state message")
        assert client.post("/streams/cam/record").status_code == 200
        wait_for(lambda: subscriber.payloads("streamwarden/cam/recording"), 5,
                 message="recording message")
        assert json.loads(subscriber.payloads("streamwarden/cam/recording")[-1])["recording"]

        broker.kill()
        wait_for(lambda: not svc.service.mqtt.connected, 10, message="disconnect noticed")
        started = time.monotonic()
        for _ in range(3):  # the service goes on as if nothing happened
            assert client.post("/streams/cam/record").status_code == 200
            assert client.delete("/streams/cam/record").status_code == 200
        assert time.monotonic() - started < 2
        assert state_of(client, "cam")["health"]["state"] == "streaming"

        broker.start()  # same port
        wait_for(lambda: svc.service.mqtt.connected, 35, message="reconnected")
        before = len(subscriber.payloads("streamwarden/cam/recording"))
        assert client.post("/streams/cam/record").status_code == 200
        wait_for(lambda: len(subscriber.payloads("streamwarden/cam/recording")) > before, 10,
                 message="messages after the broker came back")
        metrics = client.get("/metrics").text
        assert "streamwarden_mqtt_connected 1.0" in metrics
    finally:
        subscriber.close()
        broker.kill()


def discovery_topic(stream_id: str, component: str, entity: str) -> str:
    return f"homeassistant/{component}/streamwarden/{stream_id}_{entity}/config"


ENTITIES = (("camera", "camera"), ("binary_sensor", "online"),
            ("binary_sensor", "person_detected"), ("switch", "recording"),
            ("switch", "detection"))


def test_home_assistant_discovery_states_and_switches(tmp_path, service_factory, camera_factory):
    port = free_port()
    broker = Broker(tmp_path, port)
    broker.start()
    subscriber = Subscriber(port, ("streamwarden/#", "homeassistant/#"))
    camera = camera_factory(["/cam"])
    try:
        svc = service_factory(Config(
            mqtt=MqttSection(host="127.0.0.1", port=port, home_assistant=True,
                             snapshot_interval=1),
            streams=[StreamConfig(id="cam", uri=camera.url())]))
        client = svc.client()
        expected = {discovery_topic("cam", c, e) for c, e in ENTITIES}
        wait_for(lambda: expected <= set(subscriber.topics()), 10, message="discovery configs")
        configs = {topic: json.loads(subscriber.last(topic)) for topic in expected}
        unique_ids = [c["unique_id"] for c in configs.values()]
        assert len(set(unique_ids)) == len(ENTITIES)
        assert all(c["availability_topic"] == "streamwarden/status" for c in configs.values())
        assert {c["device"]["identifiers"][0] for c in configs.values()} == {
            "streamwarden_cam_camera"}
        camera_entity = configs[discovery_topic("cam", "camera", "camera")]
        online = configs[discovery_topic("cam", "binary_sensor", "online")]
        recording = configs[discovery_topic("cam", "switch", "recording")]
        detection = configs[discovery_topic("cam", "switch", "detection")]

        wait_for(lambda: subscriber.last(online["state_topic"]) == "ON", 15, message="online")
        assert subscriber.last(recording["state_topic"]) == "OFF"
        assert subscriber.last(detection["state_topic"]) == "OFF"
        wait_for(lambda: any(p[:2] == b"\xff\xd8" for p in subscriber.raw(camera_entity["topic"])),
                 10, message="a JPEG on the camera entity's topic")

        subscriber.publish(recording["command_topic"], "ON")  # the switch, as HA flips it
        wait_for(lambda: client.get("/streams/cam").json()["recording"], 10,
                 message="recording started over MQTT")
        wait_for(lambda: subscriber.last(recording["state_topic"]) == "ON", 5,
                 message="recording switch state ON")
        subscriber.publish(recording["command_topic"], "toggle")  # not a command: ignored
        subscriber.publish(recording["command_topic"], "OFF")
        wait_for(lambda: not client.get("/streams/cam").json()["recording"], 10,
                 message="recording stopped over MQTT")
        subscriber.publish(detection["command_topic"], "ON")
        wait_for(lambda: client.get("/streams/cam").json()["enable_inference"], 20,
                 message="detection turned on over MQTT")
        wait_for(lambda: subscriber.last(detection["state_topic"]) == "ON", 5,
                 message="detection switch state ON")
        assert svc.service.hass.commands == 3

        # a stream added through the API is announced; deleted, its entities are removed
        added = {"id": "extra", "uri": f"rtsp://127.0.0.1:{free_port()}/x"}
        assert client.post("/streams", json=added).status_code == 201
        extra = discovery_topic("extra", "switch", "recording")
        wait_for(lambda: subscriber.last(extra), 10, message="the new stream announced")
        assert client.delete("/streams/extra").status_code == 204
        wait_for(lambda: subscriber.last(extra) == "", 10, message="its config cleared")

        svc.stop()  # entities go unavailable with the service, and stay known
        wait_for(lambda: subscriber.last("streamwarden/status") == "offline", 10,
                 message="offline")
        assert all(subscriber.last(topic) for topic in expected)
    finally:
        subscriber.close()
        broker.kill()
