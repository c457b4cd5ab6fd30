"""Ingest against real RTSP cameras on 127.0.0.1: continuity, outages, stalls, bad sources."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from streamwarden.config.model import Config, SourceSettings, StreamConfig
from streamwarden.consumers.frame_counter import FrameCounter
from tests.conftest import free_port, state_of, wait_for

FAST = SourceSettings(timeout=2, restart_timeout=1, retry_timeout=60)
FRAME_MS = 40  # the synthetic cameras run at 25 fps


def config_with(streams: dict[str, str], settings: SourceSettings = FAST, **app) -> Config:
    return Config(
        stream_defaults=settings,
        streams=[StreamConfig(id=sid, uri=uri) for sid, uri in streams.items()],
        **({"app": app} if app else {}),
    )


def streaming(client, *ids: str) -> bool:
    return all(state_of(client, sid)["health"]["state"] == "streaming" for sid in ids)


def test_add_and_remove_while_others_stream_without_gap(camera_factory, service_factory):
    watched = camera_factory(["/c1", "/c2", "/c3"])
    leaving = camera_factory(["/c4"])
    joining = camera_factory(["/c5"])
    svc = service_factory(config_with({
        "s1": watched.url("/c1"), "s2": watched.url("/c2"), "s3": watched.url("/c3"),
        "s4": leaving.url("/c4"),
    }))
    client = svc.client()
    wait_for(lambda: streaming(client, "s1", "s2", "s3", "s4"), 20, message="4 streams")
    counters = {sid: FrameCounter() for sid in ("s1", "s2", "s3")}
    for sid, counter in counters.items():
        svc.manager.attach(sid, counter)
    time.sleep(2)

    # The cameras' own jitter, measured the same way over a quiet window.
    for counter in counters.values():
        counter.reset_gap()
    time.sleep(3)
    baseline = {sid: c.max_gap_ns / 1e6 for sid, c in counters.items()}
    for counter in counters.values():
        counter.reset_gap()
    frames_before = {sid: c.frames for sid, c in counters.items()}

    assert client.post("/streams", json={"id": "s5", "uri": joining.url("/c5")}).status_code == 201
    wait_for(lambda: streaming(client, "s5"), 15, message="s5 streaming")
    assert client.delete("/streams/s4").status_code == 204
    time.sleep(2)

    for sid, counter in counters.items():
        gap = counter.max_gap_ns / 1e6
        allowed = max(baseline[sid], FRAME_MS) + 2 * FRAME_MS
        assert gap <= allowed, f"{sid}: {gap:.0f} ms without frames (allowed {allowed:.0f})"
        assert counter.frames > frames_before[sid] + 25
        assert state_of(client, sid)["health"]["retry_count"] == 0
    ids = [entry["id"] for entry in client.get("/health").json()]
    assert sorted(ids) == ["s1", "s2", "s3", "s5"]
    stats = state_of(client, "s1")["statistics"]
    [counter_stats] = [c for c in stats["consumers"] if c["kind"] == "frame_counter"]
    assert counter_stats["keyframes"] >= 5  # one GOP a second


@pytest.mark.slow
def test_camera_killed_for_ten_seconds_comes_back(camera_factory, service_factory):
    flaky = camera_factory(["/cam"])
    steady = camera_factory(["/cam"])
    svc = service_factory(config_with({"flaky": flaky.url(), "steady": steady.url()}))
    client = svc.client()
    wait_for(lambda: streaming(client, "flaky", "steady"), 20, message="both streaming")
    counter = FrameCounter()
    svc.manager.attach("steady", counter)
    time.sleep(1)
    counter.reset_gap()

    flaky.kill()
    wait_for(lambda: state_of(client, "flaky")["health"]["state"] == "retrying", 4,
             message="flaky retrying")
    time.sleep(10)
    health = state_of(client, "flaky")["health"]
    assert health["state"] == "retrying" and not health["is_healthy"]
    assert health["last_retry_reason"] in ("eos", "error", "timeout")

    flaky.start()  # same port
    back = time.monotonic()
    wait_for(lambda: state_of(client, "flaky")["health"]["state"] == "streaming",
             FAST.restart_timeout + 2 + 1, message="flaky back")
    assert time.monotonic() - back <= FAST.restart_timeout + 2
    health = state_of(client, "flaky")["health"]
    assert health["retry_count"] >= 1 and health["is_healthy"]

    steady_health = state_of(client, "steady")["health"]
    assert steady_health["state"] == "streaming" and steady_health["retry_count"] == 0
    assert counter.max_gap_ns / 1e6 < 500


class SilentServer:
    """Accepts TCP connections and never answers (a camera whose RTSP server hangs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


def test_endpoint_that_never_answers_is_detected_within_timeout(service_factory):
    silent = SilentServer()
    try:
        svc = service_factory(Config(stream_defaults=FAST))
        client = svc.client()
        started = time.monotonic()
        assert client.post("/streams", json={
            "id": "mute", "uri": f"rtsp://127.0.0.1:{silent.port}/x"}).status_code == 201
        wait_for(lambda: state_of(client, "mute")["health"]["retry_count"] >= 1,
                 FAST.timeout + 1.5, message="timeout detected")
        elapsed = time.monotonic() - started
        health = state_of(client, "mute")["health"]
        assert elapsed <= FAST.timeout + 1
        assert health["state"] == "retrying" and health["last_retry_reason"] == "timeout"
        assert silent.conns, "the source never connected to the silent server"
    finally:
        silent.close()


def test_camera_that_stops_sending_media_is_detected_within_timeout(camera_factory,
                                                                    service_factory):
    camera = camera_factory(["/cam"])
    svc = service_factory(config_with({"frozen": camera.url()}))
    client = svc.client()
    wait_for(lambda: streaming(client, "frozen"), 15, message="streaming")
    camera.freeze()
    frozen_at = time.monotonic()
    wait_for(lambda: state_of(client, "frozen")["health"]["state"] == "retrying",
             FAST.timeout + 1.5, message="stall detected")
    assert time.monotonic() - frozen_at <= FAST.timeout + 1
    assert state_of(client, "frozen")["health"]["last_retry_reason"] == "timeout"
    camera.thaw()
    wait_for(lambda: streaming(client, "frozen"), 10, message="streaming after thaw")


def test_refused_connection_and_wrong_path_are_errors(camera_factory, service_factory):
    camera = camera_factory(["/cam"])
    closed = free_port()
    svc = service_factory(config_with({
        "refused": f"rtsp://127.0.0.1:{closed}/x",
        "notfound": f"rtsp://127.0.0.1:{camera.port}/no-such-path",
    }))
    client = svc.client()
    for sid in ("refused", "notfound"):
        wait_for(lambda sid=sid: state_of(client, sid)["health"]["retry_count"] >= 1, 5,
                 message=f"{sid} retried")
        health = state_of(client, sid)["health"]
        assert health["state"] == "retrying" and health["last_retry_reason"] == "error"
        assert not health["is_healthy"] and health["last_frame_age_s"] is None
    assert "Not Found" in state_of(client, "notfound")["health"]["last_error"]


def test_h265_with_aac_audio_is_carried(camera_factory, service_factory):
    camera = camera_factory(["/cam"], ["--codec", "h265", "--audio"])
    svc = service_factory(config_with({"hevc": camera.url()}))
    client = svc.client()
    wait_for(lambda: streaming(client, "hevc"), 15, message="streaming")
    wait_for(lambda: state_of(client, "hevc")["statistics"]["audio_frames"] > 20, 5,
             message="audio frames")
    stats = state_of(client, "hevc")["statistics"]
    assert stats["video_codec"] == "h265" and stats["audio_codec"] == "aac"
    assert (stats["width"], stats["height"]) == (640, 360)
    assert "audio" in svc.manager.get("hevc").tees


def test_udp_transport(camera_factory, service_factory):
    camera = camera_factory(["/cam"])
    svc = service_factory(Config())
    client = svc.client()
    body = {"id": "udp", "uri": camera.url(), "transport": "udp"}
    assert client.post("/streams", json=body).status_code == 201
    wait_for(lambda: streaming(client, "udp"), 15, message="udp streaming")
    assert state_of(client, "udp")["settings"]["transport"] == "udp"
    wait_for(lambda: state_of(client, "udp")["health"]["fps"] > 20, 5, message="25 fps")


def test_credentials_never_reach_logs_or_api(service_factory, caplog):
    closed = free_port()
    svc = service_factory(Config(stream_defaults=FAST))
    client = svc.client()
    uri = f"rtsp://admin:hunter2@127.0.0.1:{closed}/live"
    with caplog.at_level("DEBUG"):
        assert client.post("/streams", json={"id": "secret", "uri": uri}).status_code == 201
        wait_for(lambda: state_of(client, "secret")["health"]["retry_count"] >= 1, 5,
                 message="a failed attempt")
    assert "hunter2" not in client.get("/streams").text
    assert "hunter2" not in client.get("/health").text
    assert "hunter2" not in caplog.text
    assert "admin:***@" in caplog.text


def test_auto_remove_unhealthy_stream(service_factory):
    closed = free_port()
    config = config_with({"dead": f"rtsp://127.0.0.1:{closed}/x"},
                         auto_remove_unhealthy=True, removal_threshold="2s",
                         health_check_interval="500ms")
    svc = service_factory(config)
    client = svc.client()
    assert client.get("/streams/dead").status_code == 200
    wait_for(lambda: client.get("/streams/dead").status_code == 404, 5, message="auto-removal")


def test_consumers_get_eos_before_removal_and_shutdown(camera_factory, service_factory):
    camera = camera_factory(["/a", "/b"])
    svc = service_factory(config_with({"a": camera.url("/a"), "b": camera.url("/b")}))
    client = svc.client()
    wait_for(lambda: streaming(client, "a", "b"), 15, message="streaming")
    on_a, on_b = FrameCounter(wait_for_eos=True), FrameCounter(wait_for_eos=True)
    plain = FrameCounter("plain")
    svc.manager.attach("a", on_a)
    svc.manager.attach("b", on_b)
    svc.manager.attach("b", plain)
    wait_for(lambda: on_a.frames > 5 and on_b.frames > 5, 5, message="frames at consumers")

    assert client.delete("/streams/a").status_code == 204
    assert on_a.eos_received  # drained before DELETE answered
    svc.manager.detach("b", plain)  # a consumer that needs no EOS is cut off at once
    assert not plain.eos_received
    svc.stop()  # SIGTERM path: EOS to every consumer before the pipelines stop
    assert on_b.eos_received
