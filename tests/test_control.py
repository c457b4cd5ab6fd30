"""The control plane: streams that survive restarts, config/API merge rules, PATCH."""

from __future__ import annotations

import logging

from streamwarden.config.model import AppSection, Config, RecordingSection, StreamConfig
from tests.conftest import free_port, state_of, wait_for


def config_in(tmp_path, streams: list[StreamConfig] | None = None) -> Config:
    return Config(app=AppSection(database=str(tmp_path / "state.db")),
                  recording=RecordingSection(base_path=str(tmp_path / "rec")),
                  streams=streams or [])


def test_api_streams_survive_restart_and_config_wins(service_factory, camera_factory, tmp_path,
                                                     caplog):
    camera = camera_factory(["/one", "/two"])
    dead = f"rtsp://127.0.0.1:{free_port()}/x"
    svc = service_factory(config_in(tmp_path, [StreamConfig(id="cfg", uri=camera.url("/one"))]))
    client = svc.client()
    assert client.post("/streams", json={"id": "api1", "uri": dead}).status_code == 201
    assert client.post("/streams", json={"id": "both", "uri": dead}).status_code == 201
    patched = client.patch("/streams/api1", json={"uri": camera.url("/two"), "timeout": "4s"})
    assert patched.status_code == 200 and patched.json()["settings"]["timeout"] == "4s"
    assert client.post("/streams", json={"id": "gone", "uri": dead}).status_code == 201
    assert client.delete("/streams/gone").status_code == 204
    svc.stop()

    # restart: same database; the file now also names "both"
    config = config_in(tmp_path, [StreamConfig(id="cfg", uri=camera.url("/one")),
                                  StreamConfig(id="both", uri=camera.url("/one"))])
    with caplog.at_level(logging.WARNING):
        svc = service_factory(config)
    client = svc.client()
    streams = {s["id"]: s for s in client.get("/streams").json()}
    assert set(streams) == {"cfg", "both", "api1"}
    assert streams["cfg"]["source"] == "config" and streams["api1"]["source"] == "api"
    assert streams["both"]["source"] == "config" and streams["both"]["uri"] == camera.url("/one")
    assert streams["api1"]["uri"] == camera.url("/two")
    assert streams["api1"]["settings"]["timeout"] == "4s"
    assert "config file's definition is used" in caplog.text
    wait_for(lambda: state_of(client, "api1")["health"]["state"] == "streaming", 15,
             message="restored API stream streams")


def test_patch_recording_in_place_and_uri_restarts(service_factory, camera_factory, tmp_path):
    camera = camera_factory(["/one", "/two"])
    svc = service_factory(config_in(tmp_path))
    client = svc.client()
    assert client.post("/streams", json={"id": "cam", "uri": camera.url("/one")}).status_code \
        == 201
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 15,
             message="streaming")
    producer = svc.manager.get("cam")
    response = client.patch("/streams/cam", json={"enable_recording": True})
    assert response.status_code == 200 and response.json()["recording"] is True
    assert svc.manager.get("cam") is producer  # same pipeline, no reconnect
    assert state_of(client, "cam")["health"]["retry_count"] == 0
    response = client.patch("/streams/cam", json={"enable_recording": False})
    assert response.json()["recording"] is False

    response = client.patch("/streams/cam", json={"uri": camera.url("/two")})
    assert response.status_code == 200 and svc.manager.get("cam") is not producer
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 15,
             message="streaming from the new URI")

    assert client.patch("/streams/cam", json={"uri": "ftp://x"}).status_code == 422
    assert client.patch("/streams/cam", json={"id": "other"}).status_code == 422
    assert client.patch("/streams/nope", json={}).status_code == 404


def scrape(client) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_parse_and_move(service_factory, camera_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(config_in(tmp_path, [StreamConfig(id="cam", uri=camera.url(),
                                                             enable_recording=True)]))
    client = svc.client()
    wait_for(lambda: state_of(client, "cam")["health"]["fps"] > 20, 15, message="25 fps")
    label = (("stream", "cam"),)
    first = scrape(client)
    import time
    time.sleep(1.5)
    second = scrape(client)
    assert second[("streamwarden_stream_frames_total", label)] > \
        first[("streamwarden_stream_frames_total", label)] + 20
    assert second[("streamwarden_stream_bytes_total", label)] > \
        first[("streamwarden_stream_bytes_total", label)]
    assert 20 < second[("streamwarden_stream_fps", label)] < 30
    assert second[("streamwarden_stream_state", (("state", "streaming"), ("stream", "cam")))] == 1
    assert second[("streamwarden_stream_state", (("state", "failed"), ("stream", "cam")))] == 0
    assert second[("streamwarden_recording_active", label)] == 1
    assert second[("streamwarden_stream_retries_total", label)] == 0
    assert second[("process_resident_memory_bytes", ())] > 10e6
    assert second[("process_cpu_seconds_total", ())] > 0
    assert second[("streamwarden_recording_disk_free_bytes", ())] > 0
    for reason in ("disk_full", "write_error"):  # present from the start, nothing lost
        assert second[("streamwarden_recording_lost_seconds_total",
                       (("reason", reason), ("stream", "cam")))] == 0
