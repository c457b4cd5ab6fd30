"""A detection sub-stream (`detect_uri`): a second camera connection, decoded instead of the
main stream, boxes reported in the main stream's coordinates, each connection failing and
recovering alone, added and removed in place. Real RTSP cameras on loopback, a real service,
a deterministic detector plugin (tests/plugins/boxes.py)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamwarden.config.model import (
    AppSection,
    Config,
    InferenceSection,
    SourceSettings,
    StreamConfig,
)
from tests.conftest import REPO, state_of, wait_for
from tests.plugins.boxes import FIXED_BOX

# a 5 s timeout: on a busy machine a 2 s gap between frames must not restart the main stream
FAST = SourceSettings(timeout=5, restart_timeout=1)
MAIN = ["--width", "640", "--height", "360"]  # 16:9
SUB = ["--width", "320", "--height", "240"]  # 4:3: with "crop", the middle 3/4 of the main


@pytest.fixture
def plugin_path(monkeypatch):
    """Let the worker import tests.plugins (it runs with the repository as working dir)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))


def server_connections(port: int) -> list[int]:
    """Inodes of the established TCP connections a server on `port` has accepted: what the
    camera sees, counted from the kernel's tables (the service's ends have `port` remote)."""
    inodes = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED
                inodes.append(int(fields[9]))
    return sorted(inodes)


def client_connection(port: int) -> list[int]:
    """Inodes of established connections *to* `port` (the service's side)."""
    inodes = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.append(int(fields[9]))
    return sorted(inodes)


def health(client, sid: str = "cam") -> dict:
    return next(h for h in client.get("/health").json() if h["id"] == sid)


def decoder_on(view: dict) -> str | None:
    """Which connection the stream's decoder hangs on: "main", "detect" or None."""
    stats = view["statistics"]
    if any(c["kind"] == "pixels" for c in stats["consumers"]):
        return "main"
    detect = stats.get("detect_source") or {"consumers": []}
    if any(c["kind"] == "pixels" for c in detect["consumers"]):
        return "detect"
    return None


def seen(client) -> int:
    return health(client)["inference"]["frames_seen"]


def test_sub_stream_two_connections_mapped_boxes_and_independent_failures(
        camera_factory, service_factory, tmp_path, plugin_path):
    main = camera_factory(["/main"], MAIN)
    sub = camera_factory(["/sub"], SUB)
    config = Config(
        app=AppSection(database=str(tmp_path / "index.db")), stream_defaults=FAST,
        inference=InferenceSection(plugin="tests.plugins.boxes:FixedBoxDetector",
                                   activity_gate=False, event_gap=60),
        streams=[StreamConfig(id="cam", uri=main.url(), enable_inference=True,
                              detect_uri=sub.url(), detect_fit="crop")])
    svc = service_factory(config)
    client = svc.client()
    try:  # generous: on a busy machine two cameras and the worker start slowly
        wait_for(lambda: (health(client)["detect_source"] or {}).get("state") == "streaming"
                 and health(client)["state"] == "streaming" and seen(client) >= 3, 60,
                 message="both connections streaming and the model fed")
    except AssertionError as exc:  # say where it stood
        raise AssertionError(f"{exc}: {state_of(client, 'cam')}") from None

    # one connection at each camera; the decoder runs on the sub-stream only
    assert len(server_connections(main.port)) == 1
    assert len(server_connections(sub.port)) == 1
    view = state_of(client, "cam")
    assert decoder_on(view) == "detect"
    assert view["detect_uri"] == sub.url() and view["detect_fit"] == "crop"
    detect = view["health"]["detect_source"]
    assert (detect["width"], detect["height"], detect["reconnects"]) == (320, 240, 0)
    assert view["statistics"]["width"] == 640  # the main stream is untouched

    # the model's box (sub-stream, normalised) is reported in the main stream's coordinates
    event = wait_for(lambda: client.get("/events", params={"stream_id": "cam"}).json(), 15,
                     message="an event")[0]
    x0, y0, x1, y1 = FIXED_BOX
    assert event["box"] == pytest.approx([0.125 + x0 * 0.75, y0, 0.125 + x1 * 0.75, y1],
                                         abs=1e-3)
    # pictures are in the main stream's geometry: the 4:3 picture centred on a 16:9 canvas
    jpeg = client.get("/streams/cam/snapshot.jpg").content
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    # decoded at the sub-stream's own 320x240 (frame_width 768 never scales up), then placed
    height, width = picture.shape[:2]
    assert height == 240 and abs(width - 427) <= 1, picture.shape
    assert picture[:, :width // 10].max() < 40  # the left band the sub-stream never saw: black

    _sub_fails_alone(client, sub, camera_factory)
    _main_fails_alone(client, main, camera_factory)
    _sub_removed_and_added_in_place(client, main, sub)


def _sub_fails_alone(client, sub, camera_factory) -> None:
    main_before = health(client)
    sub.kill()
    wait_for(lambda: health(client)["detect_source"]["state"] in ("retrying", "failed"), 15,
             message="the sub-stream's outage reported")
    during = health(client)
    assert during["state"] == "streaming" and during["is_healthy"]
    assert during["retry_count"] == main_before["retry_count"]
    assert not during["detect_source"]["is_healthy"]
    camera_factory(["/sub"], SUB, port=sub.port)
    before = seen(client)
    wait_for(lambda: health(client)["detect_source"]["state"] == "streaming"
             and seen(client) > before + 2, 30, message="the sub-stream back, the model fed")
    assert health(client)["retry_count"] == main_before["retry_count"]


def _main_fails_alone(client, main, camera_factory) -> None:
    detect_before = health(client)["detect_source"]
    main.kill()
    wait_for(lambda: health(client)["state"] in ("retrying", "failed"), 15,
             message="the main stream's outage reported")
    before = seen(client)
    wait_for(lambda: seen(client) > before + 2, 15,
             message="detection goes on from the sub-stream during the outage")
    during = health(client)["detect_source"]
    assert during["state"] == "streaming"
    assert during["reconnects"] == detect_before["reconnects"]
    camera_factory(["/main"], MAIN, port=main.port)
    wait_for(lambda: health(client)["state"] == "streaming", 30, message="main back")
    assert health(client)["detect_source"]["reconnects"] == detect_before["reconnects"]


def _sub_removed_and_added_in_place(client, main, sub) -> None:
    main_socket = client_connection(main.port)
    retries = health(client)["retry_count"]
    view = client.patch("/streams/cam", json={"detect_uri": None}).json()
    assert view["detect_uri"] is None and view["health"]["detect_source"] is None
    wait_for(lambda: not server_connections(sub.port), 10, message="the sub-stream closed")
    assert decoder_on(state_of(client, "cam")) == "main"
    before = seen(client)
    wait_for(lambda: seen(client) > before + 2, 30, message="the model fed from the main stream")
    event_box = client.get("/events", params={"stream_id": "cam"}).json()[0]["box"]
    assert event_box  # the same open event went on

    view = client.patch("/streams/cam", json={"detect_uri": sub.url()}).json()
    assert view["detect_uri"] == sub.url()
    wait_for(lambda: len(server_connections(sub.port)) == 1
             and decoder_on(state_of(client, "cam")) == "detect", 15,
             message="the sub-stream back, the decoder on it")
    before = seen(client)
    wait_for(lambda: seen(client) > before + 2, 30, message="the model fed from the sub-stream")
    # the main connection was never touched: the same socket, no retry
    assert client_connection(main.port) == main_socket
    assert health(client)["retry_count"] == retries
    assert len(server_connections(main.port)) == 1


def test_bad_detect_uri_is_refused_with_a_clear_error_and_nothing_changes(service_factory,
                                                                          tmp_path):
    svc = service_factory(Config(app=AppSection(database=str(tmp_path / "index.db"))))
    client = svc.client()
    base = {"id": "cam", "uri": "rtsp://127.0.0.1:9/main"}
    for body, status, code, words in (
            ({**base, "detect_uri": "rtsp://127.0.0.1:9/main"}, 422, "invalid_request",
             "same as uri"),
            ({**base, "detect_uri": "ftp://127.0.0.1/sub"}, 422, "invalid_request", "detect_uri"),
            ({**base, "detect_uri": "file:///etc/passwd"}, 403, "file_source_not_allowed",
             "allowed_file_dirs"),
            ({**base, "detect_fit": "zoom"}, 422, "invalid_request", "detect_fit")):
        answer = client.post("/streams", json=body)
        assert answer.status_code == status, answer.text
        assert answer.json()["error"] == code and words in answer.json()["detail"]
    assert client.get("/streams").json() == []
    assert client.post("/streams", json=base).status_code == 201
    answer = client.patch("/streams/cam", json={"detect_uri": "file:///etc/passwd"})
    assert answer.status_code == 403 and answer.json()["error"] == "file_source_not_allowed"
    answer = client.patch("/streams/cam", json={"detect_uri": "rtsp://127.0.0.1:9/main"})
    assert answer.status_code == 422 and "same as uri" in answer.json()["detail"]
    assert state_of(client, "cam")["detect_uri"] is None
    # the redacted form: a password in the sub-stream's URI is never shown
    view = client.patch("/streams/cam", json={"detect_uri": "rtsp://u:secret@127.0.0.1:9/s"})
    assert view.status_code == 200 and "secret" not in view.text
    assert "secret" not in client.get("/health").text
