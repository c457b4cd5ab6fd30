"""WebSocket live events: snapshot, stats, state changes; a stalled client never slows others."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time

from websockets.sync.client import connect

from streamwarden.config.model import AppSection, Config, SourceSettings
from tests.conftest import free_port, wait_for


def rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def stalled_client(port: int) -> socket.socket:
    """Completes the WebSocket handshake, then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def test_two_clients_one_stalled(service_factory):
    config = Config(app=AppSection(health_check_interval=1),
                    stream_defaults=SourceSettings(timeout=1, restart_timeout="500ms"))
    svc = service_factory(config)
    client = svc.client()
    url = f"ws://127.0.0.1:{svc.port}/ws"
    received: list[tuple[float, dict]] = []
    with connect(url) as fast:
        first = json.loads(fast.recv(timeout=5))
        assert first["type"] == "snapshot" and first["streams"] == []
        stalled = stalled_client(svc.port)
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    event = json.loads(fast.recv(timeout=0.5))
                    event.pop("pad", None)  # the test keeps what it checks, not the payload
                    received.append((time.time(), event))
                except TimeoutError:
                    continue
                except Exception:
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        baseline = rss_kib()
        # real state changes: streams added, failing, removed
        for index in range(3):
            body = {"id": f"s{index}", "uri": f"rtsp://127.0.0.1:{free_port()}/x"}
            assert client.post("/streams", json=body).status_code == 201
        time.sleep(2)
        # and a steady stream of events (24 MB at 1000/s): a reading client keeps up easily;
        # a stalled one fills its socket buffers, then its queue, and is dropped
        hub = svc.service.notifier
        pad = "x" * 4000
        for n in range(6000):
            hub.publish_threadsafe({"type": "test_flood", "n": n, "pad": pad})
            if n % 100 == 99:
                time.sleep(0.1)
        for index in range(3):
            assert client.delete(f"/streams/s{index}").status_code == 204
        wait_for(lambda: any(e.get("type") == "stream_removed" and e["stream_id"] == "s2"
                             for _, e in received), 10, message="removal seen")
        stop.set()
        reader.join(2)
        stalled.close()

    assert hub.clients_dropped >= 1, "the stalled client was never dropped"
    grown = rss_kib() - baseline
    assert grown < 30 * 1024, f"RSS grew by {grown} KiB during 24 MB of events"
    states = [(t, e) for t, e in received if e["type"] == "state"]
    assert {e["stream_id"] for _, e in states} == {"s0", "s1", "s2"}
    assert any(e["state"] == "retrying" for _, e in states)
    for arrived, event in states:
        assert arrived - event["ts"] < 1.0, f"state change reached the client late: {event}"
    types = {e["type"] for _, e in received}
    assert {"stream_added", "stream_removed", "stats", "state"} <= types
    stats = next(e for _, e in received if e["type"] == "stats")
    assert {s["id"] for s in stats["streams"]} <= {"s0", "s1", "s2"}


def test_subscribe_changes_interval(service_factory):
    svc = service_factory(Config(app=AppSection(health_check_interval=30)))
    with connect(f"ws://127.0.0.1:{svc.port}/ws") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"
        ws.send(json.dumps({"type": "subscribe", "interval": 0.5}))
        ws.send("not json")  # ignored, not fatal
        messages = [json.loads(ws.recv(timeout=3)) for _ in range(2)]
        assert [m["type"] for m in messages] == ["stats", "stats"]


def test_open_clients_say_goodbye_then_wait_for_their_handlers():
    """The shutdown registry (api/clients.py): every open client is told, late ones at once,
    and close_all returns when the handlers are done, or at its timeout for a stuck one."""
    import asyncio

    from streamwarden.api.clients import OpenClients
    from streamwarden.notify import GOODBYE, Notifier

    async def scenario() -> None:
        clients, hub = OpenClients(), Notifier()
        backlogged = hub.subscribe()
        for n in range(100):
            hub.offer(backlogged, {"n": n})
        hub.say_goodbye(backlogged)  # its backlog is discarded: the goodbye is next
        assert backlogged.queue.qsize() == 1 and backlogged.queue.get_nowait() is GOODBYE

        subscriber = hub.subscribe()
        received = []

        async def handler() -> None:
            with clients.open(lambda: hub.say_goodbye(subscriber)):
                while (event := await subscriber.queue.get()) is not GOODBYE:
                    received.append(event)
                await asyncio.sleep(0.1)  # closing the socket takes a moment

        task = asyncio.create_task(handler())
        hub.publish({"type": "first", "ts": 1.0})
        await asyncio.sleep(0.05)
        assert len(clients) == 1
        await asyncio.wait_for(clients.close_all(timeout=2), 3)
        assert task.done() and len(clients) == 0 and subscriber not in hub.subscribers
        assert received == [{"type": "first", "ts": 1.0}]
        hub.publish({"type": "late"})  # nothing reaches a client after its goodbye
        assert subscriber.queue.empty()

        told = []
        with clients.open(lambda: told.append(True)):  # opened while stopping
            assert told == [True]
            started = time.monotonic()
            await clients.close_all(timeout=0.3)  # this one never ends: bounded wait
            assert 0.25 < time.monotonic() - started < 1.0

    asyncio.run(scenario())
