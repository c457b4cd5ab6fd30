"""Webhooks end to end: a real receiver (an HTTP server on 127.0.0.1 in this test) that is down,
then too slow to answer within the webhook's timeout, then back. Every event reaches it exactly
once by idempotency key (retries reuse the key and the very same body), in order, each
attempt signed; the camera's frames keep counting and the API keeps answering meanwhile. A
receiver that refuses (400) is given up at once and counted."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streamwarden.config.hooks import WebhookSection
from streamwarden.config.model import AppSection, Config, RecordingSection, StreamConfig
from streamwarden.hooks.signing import verify
from tests.conftest import free_port, state_of, wait_for
from tests.test_hooks import FAST, metric

SECRET = "test-secret-of-some-length"


@dataclass
class Receipt:
    path: str
    key: str
    body: bytes
    signature: str | None
    attempt: int
    event: str


class Receiver:
    """An HTTP server that records every request; `delay` makes it answer late."""

    def __init__(self, port: int):
        self.port = port
        self.receipts: list[Receipt] = []
        self.delay = 0.0
        self._server: ThreadingHTTPServer | None = None

    def start(self, delay: float = 0.0) -> None:
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.receipts.append(Receipt(
                    self.path, self.headers["Idempotency-Key"], body,
                    self.headers.get("X-Streamwarden-Signature"),
                    int(self.headers["X-Streamwarden-Attempt"]),
                    self.headers["X-Streamwarden-Event"]))
                time.sleep(receiver.delay)
                status = 400 if self.path == "/refuse" else 204
                try:
                    self.send_response(status)
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def test_down_then_slow_then_back_gets_every_event_once_and_never_stalls_ingest(
        camera_factory, service_factory, tmp_path):
    receiver = Receiver(free_port())
    camera = camera_factory(["/cam"])
    url = f"http://127.0.0.1:{receiver.port}"
    config = Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), segment_duration="1s"),
        stream_defaults=FAST,
        streams=[StreamConfig(id="cam", uri=camera.url(), enable_recording=True)],
        webhooks=[
            WebhookSection(url=f"{url}/in?token=abc", name="ops", secret=SECRET,
                           events=["stream_ready", "segment_complete"], timeout=0.5,
                           backoff=0.2, max_backoff=1.0, max_attempts=1000),
            WebhookSection(url=f"{url}/refuse", name="refuser", events=["stream_ready"],
                           backoff=0.2, max_backoff=0.5, max_attempts=1000),
        ],
    )
    svc = service_factory(config)
    client = svc.client()
    try:
        frames = [_watch_ingest(client, seconds=4)]  # down: nothing listens
        assert receiver.receipts == []
        receiver.start(delay=1.0)  # slow: answers after the webhook's timeout
        frames.append(_watch_ingest(client, seconds=3))
        assert any(r.path.startswith("/in") for r in receiver.receipts), "it was tried"
        receiver.delay = 0.0  # back
        frames.append(_watch_ingest(client, seconds=2))
        assert client.delete("/streams/cam/record").status_code == 200
        wait_for(lambda: metric(client.get("/metrics").text, "streamwarden_webhook_queued",
                                webhook="ops") == 0 and
                 all(r["status"] != "recording" for r in client.get("/recordings").json()),
                 15, message="every delivery made")
        time.sleep(0.5)  # a last segment_complete queued just now would show here
        metrics = client.get("/metrics").text
        assert metric(metrics, "streamwarden_webhook_queued", webhook="ops") == 0
    finally:
        receiver.stop()
    for samples in frames:
        assert all(b > a for a, b in itertools.pairwise(samples)), (
            f"frames stopped counting: {samples}")
    delivered = _check_once_each(receiver.receipts, client)
    assert metric(metrics, "streamwarden_webhook_delivered_total", webhook="ops") == delivered
    assert metric(metrics, "streamwarden_webhook_failed_attempts_total", webhook="ops") > 0
    assert metric(metrics, "streamwarden_webhook_given_up_total", webhook="ops") == 0
    assert metric(metrics, "streamwarden_webhook_dropped_total", webhook="ops") == 0
    refused = [r for r in receiver.receipts if r.path == "/refuse"]
    assert len(refused) == 1 and refused[0].signature is None, "no secret: no signature"
    assert metric(metrics, "streamwarden_webhook_given_up_total", webhook="refuser") == 1


def _watch_ingest(client, seconds: float) -> list[int]:
    """The stream's frame count every 0.5 s; the API must answer each request quickly."""
    samples = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        asked = time.monotonic()
        samples.append(state_of(client, "cam")["statistics"]["frames"])
        assert time.monotonic() - asked < 1.0, "the API (the asyncio loop) was held up"
        time.sleep(0.5)
    return samples


def _check_once_each(receipts: list[Receipt], client) -> int:
    """Every event once by key, the same body and a valid signature on every attempt, in
    order, none missing; returns how many events were delivered."""
    mine = [r for r in receipts if r.path == "/in?token=abc"]
    by_key: dict[str, list[Receipt]] = {}
    for receipt in mine:
        assert verify(SECRET, receipt.body, receipt.signature), receipt
        by_key.setdefault(receipt.key, []).append(receipt)
    assert any(len(tries) > 1 for tries in by_key.values()), "the slow phase caused retries"
    events = []
    for key, tries in by_key.items():
        assert len({t.body for t in tries}) == 1, "a retry sends the very same body"
        attempts = [t.attempt for t in tries]  # the first ones may have found no server
        assert attempts == sorted(set(attempts)), "attempts count up"
        body = json.loads(tries[0].body)
        assert body["id"] == key and body["type"] == tries[0].event
        events.append(body)
    assert [e["time"] for e in events] == sorted(e["time"] for e in events), "in order"
    assert events[0]["type"] == "stream_ready"
    segments = [e["details"]["recording_id"] for e in events if e["type"] == "segment_complete"]
    rows = client.get("/recordings", params={"stream_id": "cam"}).json()
    assert len(rows) >= 5
    assert sorted(segments) == sorted(r["id"] for r in rows), "each segment once, none missing"
    print(f"{len(events)} events, {len(mine)} requests, "
          f"{sum(len(t) > 1 for t in by_key.values())} retried after reaching the receiver")
    return len(events)
