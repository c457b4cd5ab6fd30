"""Notifications to an MQTT broker: `<prefix>/<stream>/state|recording|detection|event`, plus
availability.

`[mqtt] objects` (labels or `label@zone`, as `record_on`) limits what is published about
detections: a `detection` message keeps only the boxes that match (none: not published), an
`event` message (a tracked object's new/update/end) goes out once its object matches, judged
on the zones it has entered so far.

paho's network thread owns the connection and reconnects on its own (1 s doubling to 30 s);
the service only ever calls the non-blocking `publish`. While the broker is away, messages
wait in paho's queue up to `[mqtt] buffer`; past that they are dropped and counted, so a
broker outage costs bounded memory and never slows streams, recording or the API.
`<prefix>/status` is `online` (retained) while connected and `offline` by last will.

Others build on the connection (the Home Assistant bridge, hass/bridge.py): `subscribe` adds
a topic filter and its handler, subscribed again on every (re)connect since sessions are
clean; `on_connected` callbacks run after each connect, on paho's thread; `send` publishes
any payload through the same bounded queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from streamwarden.config.model import MqttSection
from streamwarden.inference.zones import Selector, any_match, parse_selectors

log = logging.getLogger("streamwarden.mqtt")

_TOPICS = {"state": "state", "recording": "recording", "detection": "detection",
           "segment_closed": "recording", "event": "event"}


def select(message: dict[str, Any], selectors: tuple[Selector, ...] | None,
           ) -> dict[str, Any] | None:
    """The message as `[mqtt] objects` lets it out (None: not at all)."""
    if selectors is None:
        return message
    if message.get("type") == "detection":
        kept = [d for d in message.get("detections", [])
                if any_match(selectors, d.get("label", ""), d.get("zones", []))]
        return {**message, "detections": kept} if kept else None
    if message.get("type") == "event":
        entered = [z["zone"] for z in message.get("zones", [])]
        return message if any_match(selectors, message.get("label", ""), entered) else None
    return message


class MqttBridge:
    def __init__(self, config: MqttSection):
        self.config = config
        self.prefix = config.topic_prefix.rstrip("/")
        self.selectors = None if config.objects is None else parse_selectors(config.objects)
        self.published = 0
        self.dropped = 0
        self.connected = False
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=config.client_id,
                             clean_session=True)
        if config.username:
            client.username_pw_set(config.username, config.password)
        client.will_set(f"{self.prefix}/status", "offline", qos=1, retain=True)
        client.max_queued_messages_set(config.buffer)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        # topic filter -> handler(topic, payload), on paho's thread; subscribed on each connect
        self._handlers: dict[str, Callable[[str, bytes], None]] = {}
        self.on_connected: list[Callable[[], None]] = []  # after each connect, paho's thread

    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        if self.connected:
            self.client.publish(f"{self.prefix}/status", "offline", qos=1, retain=True)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker refused the connection: %s", reason_code)
            return
        self.connected = True
        for topic_filter in list(self._handlers):
            client.subscribe(topic_filter, qos=1)
        client.publish(f"{self.prefix}/status", "online", qos=1, retain=True)
        log.info("MQTT connected to %s:%d", self.config.host, self.config.port)
        for callback in list(self.on_connected):
            try:
                callback()
            except Exception:  # one listener's bug must not cost the connection
                log.exception("MQTT on-connect callback failed")

    def subscribe(self, topic_filter: str, handler: Callable[[str, bytes], None]) -> None:
        """Call `handler(topic, payload)` (on paho's thread) for messages matching the filter."""
        self._handlers[topic_filter] = handler
        if self.connected:
            self.client.subscribe(topic_filter, qos=1)

    def _on_message(self, _client, _userdata, message) -> None:
        for topic_filter, handler in list(self._handlers.items()):
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                try:
                    handler(message.topic, message.payload)
                except Exception:
                    log.exception("MQTT message on %s: handler failed", message.topic)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if self.connected:
            log.warning("MQTT connection lost (%s); reconnecting", reason_code)
        self.connected = False

    def handle(self, message: dict[str, Any]) -> None:
        """Called for every notification (asyncio thread, a `Notifier` listener); never blocks."""
        kind = _TOPICS.get(message.get("type", ""))
        stream_id = message.get("stream_id")
        if kind is None or not stream_id:
            return
        selected = select(message, self.selectors)
        if selected is None:
            return
        message = selected
        retain = kind in ("state", "recording") and message["type"] != "segment_closed"
        self.send(f"{self.prefix}/{stream_id}/{kind}", json.dumps(message), retain=retain)

    def send(self, topic: str, payload: str | bytes, retain: bool = False, qos: int = 1) -> None:
        """Queue one message (any thread, never blocks); past `[mqtt] buffer` it is dropped."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
        else:
            self.published += 1
