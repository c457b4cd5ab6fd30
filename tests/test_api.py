"""The control API over a real HTTP client against the running service."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from streamwarden.config.model import Config, SourceSettings
from tests.conftest import free_port, state_of, wait_for

HEALTH_FIELDS = {"id", "is_healthy", "retry_count", "buffering", "state", "last_frame_age_s",
                 "fps", "bitrate_kbps", "last_retry_reason"}


@pytest.fixture
def api(service_factory):
    return service_factory(Config(stream_defaults=SourceSettings(timeout=2, restart_timeout=1)))


def test_stream_lifecycle(api, camera_factory):
    camera = camera_factory(["/cam"])
    client = api.client()
    assert client.get("/streams").json() == []
    assert client.get("/health").json() == []

    body = {"id": "cam-1", "uri": camera.url(), "enable_inference": False,
            "enable_recording": True}
    created = client.post("/streams", json=body)
    assert created.status_code == 201 and created.json() == {"id": "cam-1"}
    wait_for(lambda: state_of(client, "cam-1")["health"]["state"] == "streaming", 15,
             message="streaming")
    wait_for(lambda: state_of(client, "cam-1")["health"]["fps"] > 20, 5, message="fps")

    view = client.get("/streams/cam-1").json()
    assert view["enable_recording"] is True and view["uri"] == camera.url()
    assert view["statistics"]["video_codec"] == "h264" and view["statistics"]["frames"] > 0
    [health] = client.get("/health").json()
    assert set(health) >= HEALTH_FIELDS
    assert health["is_healthy"] and health["buffering"] == 100 and health["retry_count"] == 0
    assert 0 <= health["last_frame_age_s"] < 1 and health["bitrate_kbps"] > 0
    assert [s["id"] for s in client.get("/streams").json()] == ["cam-1"]

    assert client.delete("/streams/cam-1").status_code == 204
    assert client.get("/streams/cam-1").status_code == 404
    assert client.delete("/streams/cam-1").status_code == 404


def test_duplicate_id_is_409(api):
    client = api.client()
    body = {"id": "dup", "uri": f"rtsp://127.0.0.1:{free_port()}/x"}
    assert client.post("/streams", json=body).status_code == 201
    again = client.post("/streams", json=body)
    assert again.status_code == 409
    assert again.json() == {"error": "duplicate_id", "detail": "a stream with id 'dup' exists"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"id": "../etc", "uri": "rtsp://h/x"}, "not a valid stream id"),
        ({"id": "has space", "uri": "rtsp://h/x"}, "not a valid stream id"),
        ({"id": "x" * 500, "uri": "rtsp://h/x"}, "not a valid stream id"),
        ({"id": "", "uri": "rtsp://h/x"}, "not a valid stream id"),
        ({"id": "ok", "uri": "ftp://h/x"}, "unsupported URI scheme 'ftp'"),
        ({"id": "ok", "uri": "javascript:alert(1)"}, "unsupported URI scheme"),
        ({"id": "ok"}, "uri: required field is missing"),
        ({"id": "ok", "uri": "rtsp://h/x", "colour": "red"}, "colour: unknown field"),
        ({"id": "ok", "uri": "rtsp://h/x", "timeout": "5 minutes"}, "timeout: expected"),
        ({"id": 5, "uri": "rtsp://h/x"}, "id:"),
        ([1, 2], "body"),
    ],
)
def test_bad_bodies_are_422_with_reason(api, body, fragment):
    response = api.client().post("/streams", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["error"] == "invalid_request" and fragment in payload["detail"]
    assert api.client().get("/streams").json() == []


def test_malformed_json_and_wrong_content_type(api):
    client = api.client()
    response = client.post("/streams", content=b'{"id": "a", "uri": ', headers={
        "content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "invalid_json"
    # what `curl -d` sends: form content type, JSON body
    response = client.post("/streams", content=b'{"id":"curl","uri":"rtsp://127.0.0.1:9/x"}',
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 201


@pytest.mark.parametrize("path_id", ["..%2F..%2Fetc", "a%20b", "x" * 500, "%00"])
def test_hostile_ids_in_paths(api, path_id):
    client = api.client()
    for method in ("GET", "DELETE"):
        response = client.request(method, f"/streams/{path_id}")
        assert response.status_code in (404, 422)
        assert set(response.json()) == {"error", "detail"}


def test_every_stream_route_answers_a_missing_or_bad_id_one_way(api):
    """Every route under /streams/{id} checks the id, then looks the stream up, after its own
    query and body are validated: an unknown stream is the same 404, a malformed id the same
    422 `invalid_id`, and a malformed request a 422 `invalid_request` whatever the id."""
    client = api.client()
    routes = [("GET", "", {}, None), ("PATCH", "", {"json": {}}, {"json": {"colour": 1}}),
              ("DELETE", "", {}, None), ("POST", "/record", {}, {"json": {"bogus": 1}}),
              ("DELETE", "/record", {}, None),
              ("GET", "/snapshot.jpg", {}, {"params": {"width": 1}}),
              ("GET", "/mjpeg", {}, {"params": {"fps": 100}})]
    for method, tail, valid, malformed in routes:
        response = client.request(method, f"/streams/nope{tail}", **valid)
        assert response.status_code == 404, (method, tail)
        assert response.json() == {"error": "not_found", "detail": "no stream with id 'nope'"}
        response = client.request(method, f"/streams/a%20b{tail}", **valid)
        assert response.status_code == 422 and response.json()["error"] == "invalid_id"
        for stream_id in ("nope", "a%20b"):
            if malformed is not None:
                response = client.request(method, f"/streams/{stream_id}{tail}", **malformed)
                assert response.status_code == 422, (method, tail, stream_id)
                assert response.json()["error"] == "invalid_request"


def test_unknown_route_and_method_use_the_error_shape(api):
    client = api.client()
    assert client.get("/nope").json() == {"error": "not_found", "detail": "no such path: /nope"}
    response = client.put("/streams/x", json={})
    assert response.status_code == 405 and response.json() == {
        "error": "method_not_allowed", "detail": "PUT is not allowed on /streams/x"}
    assert "PATCH" in response.headers["allow"]  # the router's Allow header is kept
    for response in (client.get("/static/nope.js"), client.post("/static/app.js")):
        assert response.status_code in (404, 405) and set(response.json()) == {"error", "detail"}


def test_unknown_websocket_path_is_a_404_in_the_error_shape(api):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{api.port}/nope", open_timeout=10)
    assert refused.value.response.status_code == 404
    assert json.loads(refused.value.response.body) == {
        "error": "not_found", "detail": "no WebSocket endpoint at '/nope'"}


@pytest.mark.parametrize("path", ["/", "/static/app.js"])
def test_range_errors_on_served_files_use_the_error_shape(api, path):
    client = api.client()
    whole = client.get(path)
    assert whole.status_code == 200 and len(whole.content) > 100
    part = client.get(path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    for bad in ("bytes=abc", "bytes=", "lines=1-2", "bytes=5-2"):
        response = client.get(path, headers={"Range": bad})
        assert response.status_code == 400, bad
        assert response.json()["error"] == "invalid_range" and repr(bad) in \
            response.json()["detail"]
    beyond = client.get(path, headers={"Range": f"bytes={len(whole.content)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(whole.content)}"
    assert beyond.json() == {"error": "range_not_satisfiable", "detail": (
        f"the range 'bytes={len(whole.content)}-' starts beyond the end of the file "
        f"({len(whole.content)} bytes)")}


def test_openapi_documents_the_routes(api):
    paths = api.client().get("/openapi.json").json()["paths"]
    assert {"/health", "/streams", "/streams/{stream_id}"} <= set(paths)
    assert "409" in paths["/streams"]["post"]["responses"]


def _threads() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def _own_threads() -> list[str]:
    """Python threads other than the web server's two pools: asyncio's default executor
    (`asyncio.to_thread`, capped at cores + 4) keeps the threads it started, and anyio keeps
    an idle worker until the next request prunes it (capped at 40). Their size follows load,
    so one more thread there after a burst is not a leak."""
    return sorted(thread.name for thread in threading.enumerate()
                  if thread.name != "AnyIO worker thread"
                  and not thread.name.startswith("asyncio_"))


@pytest.mark.slow
def test_add_remove_fifty_times_releases_threads_and_memory(api, camera_factory):
    camera = camera_factory(["/cam"])
    client = api.client()
    body = {"id": "churn", "uri": camera.url()}

    def cycle() -> None:
        assert client.post("/streams", json=body).status_code == 201
        wait_for(lambda: state_of(client, "churn")["statistics"]["frames"] > 0, 10,
                 interval=0.02, message="frames")
        assert client.delete("/streams/churn").status_code == 204

    for _ in range(3):  # warm-up: plugins loaded, caches filled
        cycle()
    api.service.reaper.wait_idle(5)
    time.sleep(0.5)
    threads, rss, py_threads = _threads(), _rss_kib(), _own_threads()
    for _ in range(50):
        cycle()
    api.service.reaper.wait_idle(5)
    wait_for(lambda: _threads() <= threads + 2, 5, message="threads back to baseline")
    grown_kib = _rss_kib() - rss
    assert grown_kib < 20 * 1024, f"RSS grew by {grown_kib} KiB over 50 add/remove cycles"
    assert len(_own_threads()) <= len(py_threads), f"{py_threads} -> {_own_threads()}"


def test_snapshot_is_a_real_picture(api, camera_factory):
    import subprocess

    camera = camera_factory(["/cam"])
    client = api.client()
    assert client.post("/streams", json={"id": "snap", "uri": camera.url()}).status_code == 201
    response = wait_for(lambda: (r := client.get("/streams/snap/snapshot.jpg")).status_code
                        == 200 and r, 15, message="snapshot")
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"  # JPEG start of image
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", "-"], input=response.content,
                           capture_output=True, timeout=30)
    assert probe.stdout.decode().strip() == "640,360"
    small = client.get("/streams/snap/snapshot.jpg", params={"width": 160})
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=width",
                            "-of", "csv=p=0", "-"], input=small.content,
                           capture_output=True, timeout=30)
    assert probe.stdout.decode().strip() == "160"
    # a picture with content: many distinct byte values, not a flat frame
    assert len(set(response.content[1000:5000])) > 100
    assert client.get("/streams/nope/snapshot.jpg").status_code == 404
    assert client.get("/streams/snap/snapshot.jpg", params={"width": 5}).status_code == 422


def test_snapshot_without_picture_is_404_no_picture(api):
    client = api.client()
    body = {"id": "dark", "uri": f"rtsp://127.0.0.1:{free_port()}/x"}
    assert client.post("/streams", json=body).status_code == 201
    response = client.get("/streams/dark/snapshot.jpg")
    assert response.status_code == 404 and response.json()["error"] == "no_picture"
