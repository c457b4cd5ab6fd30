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
    def __init__(self, port: int):
        self.messages: list[tuple[float, str, str]] = []
        self.lock = threading.Lock()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-subscriber")
        client.on_connect = lambda c, *_: c.subscribe("streamwarden/#", qos=1)
        client.on_message = self._on_message
        client.reconnect_delay_set(0.2, 1)
        client.connect_async("127.0.0.1", port)
        client.loop_start()
        self.client = client

    def _on_message(self, _client, _userdata, message) -> None:
        with self.lock:
            self.messages.append((time.time(), message.topic, message.payload.decode()))

    def topics(self) -> list[str]:
        with self.lock:
            return [topic for _, topic, _ in self.messages]

    def payloads(self, topic: str) -> list[str]:
        with self.lock:
            return [payload for _, t, payload in self.messages if t == topic]

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
