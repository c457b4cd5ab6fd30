"""`/health/live` and `/health/ready` on a running service with real cameras: readiness waits
for every stream's first attempt, a camera that is down does not hold it back for ever, and
the probes need no token (a container's HEALTHCHECK and an orchestrator have none)."""

from __future__ import annotations

import time

import httpx

from streamwarden.cli import main as cli
from streamwarden.config.model import ApiSection, Config, SourceSettings, StreamConfig
from tests.conftest import free_port, wait_for

TOKEN = "health-test-token-0123456789"


def test_ready_flips_once_every_stream_was_attempted(camera_factory, service_factory, capsys):
    camera = camera_factory(["/cam"])
    hung = camera_factory(["/hung"])
    hung.freeze()  # accepts the connection, answers nothing: the first attempt runs to its timeout
    svc = service_factory(Config(
        api=ApiSection(token=TOKEN),
        stream_defaults=SourceSettings(timeout=3, restart_timeout=1),
        streams=[StreamConfig(id="cam", uri=camera.url()),
                 StreamConfig(id="hung", uri=hung.url("/hung"))]))
    started = time.monotonic()
    anonymous = httpx.Client(base_url=svc.base_url, timeout=10)
    assert anonymous.get("/streams").status_code == 401
    live = anonymous.get("/health/live")
    assert live.status_code == 200 and live.json() == {"status": "alive"}

    waiting = anonymous.get("/health/ready")
    assert waiting.status_code == 503, waiting.text
    assert waiting.json()["error"] == "not_ready"
    assert waiting.json()["detail"].startswith("waiting for the first attempt of stream(s)")
    assert "hung" in waiting.json()["detail"]
    assert cli(["health", "--ready", "--url", svc.base_url]) == 1
    assert "503" in capsys.readouterr().err

    ready = wait_for(lambda: (r := anonymous.get("/health/ready")).status_code == 200 and r, 10,
                     message="ready")
    assert time.monotonic() - started >= 2, "ready before the hung camera's attempt ended"
    assert ready.json() == {"status": "ready",
                            "detail": "config loaded, database open, 2 stream(s) attempted"}
    assert anonymous.get("/health").json()[1]["state"] in ("retrying", "failed")
    assert cli(["health", "--ready", "--url", svc.base_url]) == 0

    # a stream added later, still connecting, leaves the service in rotation
    client = httpx.Client(base_url=svc.base_url, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    dead = {"id": "later", "uri": f"rtsp://127.0.0.1:{free_port()}/x"}
    assert client.post("/streams", json=dead).status_code == 201
    assert anonymous.get("/health/ready").status_code == 200
    hung.thaw()
