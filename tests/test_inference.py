"""Inference end to end: a real RTSP camera showing a photograph of a person, the service's
shared decoder, the worker process and the model, the events API, and what happens when the
worker crashes, hangs, leaks, or the model is slow or bad."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from websockets.sync.client import connect

from streamwarden.config.model import (
    AppSection,
    Config,
    InferenceSection,
    RecordingSection,
    SourceSettings,
    StreamConfig,
)
from tests.conftest import REPO, free_port, state_of, wait_for
from tests.media import decodes_cleanly, ffprobe, recorded_files

FAST = SourceSettings(timeout=2, restart_timeout=1, buffer_duration=6)


def astronaut_png() -> str:
    import skimage

    return str(Path(skimage.__file__).parent / "data" / "astronaut.png")


PERSON_CAMERA = ["--image", astronaut_png(), "--width", "640", "--height", "640"]


def inference_config(tmp_path: Path, streams: dict[str, str], infer: bool = True,
                     record: bool = False, **inference) -> Config:
    return Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), segment_duration=600),
        stream_defaults=FAST,
        inference=InferenceSection(**inference),
        streams=[StreamConfig(id=sid, uri=uri, enable_inference=infer, enable_recording=record)
                 for sid, uri in streams.items()],
    )


def inference_health(client, sid: str) -> dict:
    return next(h for h in client.get("/health").json() if h["id"] == sid)


def events(client, **params) -> list[dict]:
    return client.get("/events", params=params).json()


def red_fraction_of_row(jpeg: bytes, y: float) -> float:
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    row = picture[int(y * (picture.shape[0] - 1))]
    red = (row[:, 2] > 170) & (row[:, 1] < 90) & (row[:, 0] < 90)
    return float(red.mean())


def red_fraction_near_row(jpeg: bytes, y: float, slack: float = 0.012) -> float:
    """The reddest row within `slack` of `y`: the live snapshot is a newer frame than the
    event's, and the model's box moves by a few pixels from frame to frame."""
    steps = np.linspace(max(0.0, y - slack), min(1.0, y + slack), 16)
    return max(red_fraction_of_row(jpeg, row) for row in steps)


@pytest.fixture
def plugin_path(monkeypatch):
    """Let the worker import tests.plugins (it runs with the repository as working dir)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))


def test_person_detected_end_to_end(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"], PERSON_CAMERA)
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}))
    client = svc.client()
    found = wait_for(lambda: events(client, stream_id="cam", label="person"), 30,
                     message="a person event")
    event = found[0]
    # the default model (NanoDet-g; BlazePose's detector before it scored her >= 0.7)
    assert event["model"] == "nanodet-g-416-coco" and event["confidence"] >= 0.5
    x0, y0, x1, y1 = event["box"]
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    picture = client.get(event["snapshot_url"])
    assert picture.status_code == 200 and picture.content[:2] == b"\xff\xd8"
    assert red_fraction_of_row(picture.content, y0) > 0.5, "the box is drawn on the event"
    live = client.get("/streams/cam/snapshot.jpg")
    assert live.status_code == 200 and red_fraction_near_row(live.content, y0) > 0.5
    health = inference_health(client, "cam")
    assert health["inference_state"] == "running"
    stats = health["inference"]
    assert stats["model_calls"] > 0 and stats["frames_seen"] > 0
    status = client.get("/inference").json()
    assert status["state"] == "running" and status["runtime"].startswith("onnxruntime")
    metrics = client.get("/metrics").text
    assert 'streamwarden_inference_model_calls_total{stream="cam"}' in metrics
    assert "streamwarden_inference_worker_running 1.0" in metrics
    assert status["worker_pid"] != os.getpid()
    # consecutive detections extend one event rather than filling the table
    time.sleep(2)
    [same] = events(client, stream_id="cam", label="person")
    assert same["id"] == event["id"] and same["detections"] > event["detections"]
    assert events(client, stream_id="cam", label="car") == []
    assert client.get("/events", params={"since": "2030-01-01T00:00:00Z",
                                         "until": "2029-01-01T00:00:00Z"}).status_code == 422
    assert client.get("/events/999999/snapshot.jpg").status_code == 404
    with connect(f"ws://127.0.0.1:{svc.port}/ws") as ws:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=5))
            if message["type"] == "detection":
                break
        assert message["type"] == "detection" and message["stream_id"] == "cam"
        assert message["detections"][0]["label"] == "person"


def test_decoder_runs_only_while_inference_is_on(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, infer=False,
                                           fps=0.5, activity_gate=False))
    client = svc.client()
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 20,
             message="streaming")

    def pixel_stats():
        consumers = state_of(client, "cam")["statistics"]["consumers"]
        return next((c for c in consumers if c["kind"] == "pixels"), None)

    assert pixel_stats() is None, "nothing decodes while nothing needs pixels"
    assert client.patch("/streams/cam", json={"enable_inference": True}).status_code == 200
    # 0.5 fps is below the camera's keyframe rate (1/s): only keyframes reach the decoder
    stats = wait_for(lambda: (s := pixel_stats()) and s["dropped_before_decoder"] > 20 and s,
                     20, message="delta frames dropped before the decoder")
    assert stats["keyframes_only"] is True
    time.sleep(4)
    later = pixel_stats()
    frames_in = later["frames_in"] - stats["frames_in"]
    decoded = later["frames_decoded"] - stats["frames_decoded"]
    assert frames_in >= 75 and decoded <= frames_in / 10, (frames_in, decoded)
    assert client.patch("/streams/cam", json={"enable_inference": False}).status_code == 200
    wait_for(lambda: pixel_stats() is None, 10, message="decoder detached")
    assert inference_health(client, "cam")["inference"] is None


def test_record_on_makes_one_event_recording_with_pre_roll(camera_factory, service_factory,
                                                           tmp_path):
    camera = camera_factory(["/cam"], PERSON_CAMERA)
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, infer=False,
                                           record_on=["person"], pre_roll="4s",
                                           post_roll="2s"))
    client = svc.client()
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 20,
             message="streaming")
    time.sleep(6)  # fill the pre-event buffer
    assert client.patch("/streams/cam", json={"enable_inference": True}).status_code == 200
    wait_for(lambda: state_of(client, "cam")["health"]["recording"], 20,
             message="event recording started by a detection")
    time.sleep(3)  # a burst of detections: the same recording goes on
    assert client.patch("/streams/cam", json={"enable_inference": False}).status_code == 200
    [event] = events(client, stream_id="cam")
    wait_for(lambda: not state_of(client, "cam")["health"]["recording"], 10,
             message="recording stops after the post-roll")
    wait_for(lambda: all(r["status"] == "complete" for r in client.get("/recordings").json()),
             5, message="segment closed")
    recordings = client.get("/recordings").json()
    assert len(recordings) == 1 and recordings[0]["reason"] == "event"
    [path] = recorded_files(tmp_path / "rec", "cam")
    info = ffprobe(path)
    first_detection = time.mktime(time.strptime(event["start"][:19], "%Y-%m-%dT%H:%M:%S")) \
        - time.timezone + float("0." + event["start"][20:26])
    assert info.stamps[0].wall_time <= first_detection - 2.5, "pre-roll reaches back"
    assert decodes_cleanly(path)


def test_worker_killed_while_three_streams_record(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/a", "/b", "/c"], PERSON_CAMERA)
    streams = {sid: camera.url(f"/{sid}") for sid in "abc"}
    svc = service_factory(inference_config(tmp_path, streams, record=True, fps=2))
    client = svc.client()
    for sid in streams:
        wait_for(lambda sid=sid: events(client, stream_id=sid), 30, message=f"{sid} detects")
    old_pid = client.get("/inference").json()["worker_pid"]
    calls_before = {sid: inference_health(client, sid)["inference"]["model_calls"]
                    for sid in streams}
    time.sleep(2)  # some recording before the crash
    killed_at = time.time()
    os.kill(old_pid, 9)
    status = wait_for(lambda: (s := client.get("/inference").json())["restarts"] >= 1
                      and s["state"] == "running" and s, 30, message="worker restarted")
    assert status["worker_pid"] != old_pid and "exited" in status["last_restart_reason"]
    for sid in streams:
        wait_for(lambda sid=sid: inference_health(client, sid)["inference"]["model_calls"]
                 > calls_before[sid] + 2, 20, message=f"{sid} detections resume")
        assert inference_health(client, sid)["inference"]["restarts"] >= 1
    resumed_at = time.time()
    time.sleep(1)
    for sid in streams:
        client.delete(f"/streams/{sid}/record")
    wait_for(lambda: all(r["status"] == "complete" for r in client.get("/recordings").json()),
             10, message="segments closed")
    for sid in streams:
        stamps = [stamp for path in recorded_files(tmp_path / "rec", sid)
                  for stamp in ffprobe(path).stamps]
        assert stamps[0].wall_time < killed_at - 0.5 and stamps[-1].wall_time > resumed_at
        sequences = [stamp.sequence for stamp in stamps]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), \
            f"{sid}: the recording has a gap"


def test_slow_model_drops_frames_and_stays_current(camera_factory, service_factory, tmp_path,
                                                   plugin_path, monkeypatch):
    monkeypatch.setenv("SLOW_DETECTOR_S", "1.0")
    camera = camera_factory(["/cam"])
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()},
                                           plugin="tests.plugins.detectors:SlowDetector",
                                           activity_gate=False))  # every frame offered
    client = svc.client()
    wait_for(lambda: inference_health(client, "cam")["inference"]["frames_seen"] >= 3, 30,
             message="the slow model answers")
    pid = client.get("/inference").json()["worker_pid"]
    rss_before = worker_rss(pid)
    time.sleep(8)
    stats = inference_health(client, "cam")["inference"]
    rss_after = worker_rss(pid)
    # 5 fps offered, about 1 per second taken: the rest replaced by newer frames, not queued
    assert stats["frames_dropped"] >= 10 and stats["frames_submitted"] > 3 * stats["frames_seen"]
    assert stats["result_age_ms_p95"] < 3000, "results are about the newest frame, not a backlog"
    assert rss_after - rss_before < 20 * 2**20
    assert client.get("/inference").json()["restarts"] == 0


def worker_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize(("plugin", "limits", "reason"), [
    ("HangingDetector", {"worker_deadline": "2s"}, "no answer"),
    ("LeakingDetector", {"worker_memory_limit": "300MB"}, "memory"),
])
def test_hung_or_leaking_worker_is_restarted(camera_factory, service_factory, tmp_path,
                                             plugin_path, plugin, limits, reason):
    camera = camera_factory(["/cam"])
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, record=True,
                                           plugin=f"tests.plugins.detectors:{plugin}",
                                           **limits))
    client = svc.client()
    status = wait_for(lambda: (s := client.get("/inference").json())["restarts"] >= 1 and s,
                      40, message="the worker is restarted")
    assert reason in status["last_restart_reason"]
    health = state_of(client, "cam")["health"]
    assert health["state"] == "streaming" and health["recording"] and health["fps"] > 20


def test_bad_model_at_run_time_is_an_api_error(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    bogus = tmp_path / "not-a-model.onnx"
    bogus.write_text("hello")
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, infer=False,
                                           model_path=str(bogus)))
    client = svc.client()
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 20,
             message="streaming")
    added = client.post("/streams", json={"id": "new", "uri": camera.url(),
                                          "enable_inference": True})
    assert added.status_code == 422, added.text
    assert added.json()["error"] == "inference_unavailable"
    assert "not-a-model.onnx is not an ONNX model" in added.json()["detail"]
    assert client.get("/streams/new").status_code == 404
    patched = client.patch("/streams/cam", json={"enable_inference": True})
    assert patched.status_code == 422 and "not-a-model.onnx" in patched.json()["detail"]
    assert state_of(client, "cam")["enable_inference"] is False
    assert state_of(client, "cam")["health"]["state"] == "streaming"
    assert client.get("/inference").json()["state"] == "failed"


@pytest.mark.parametrize("problem", ["missing", "not_onnx", "labels"])
def test_bad_model_at_start_up_is_named(tmp_path, problem):
    from tests import onnx_models

    model = tmp_path / "model.onnx"
    extra = ""
    if problem == "not_onnx":
        model.write_bytes(b"GIF89a" + bytes(64))
    elif problem == "labels":
        onnx_models.yolov8_model(model)
        (tmp_path / "labels.txt").write_text("one\ntwo\nthree\n")
        extra = f'labels_path = "{tmp_path / "labels.txt"}"\n'
    config = tmp_path / "sw.toml"
    config.write_text(
        f'[api]\nlisten = "127.0.0.1:{free_port()}"\nallow_unauthenticated = true\n'
        f'[app]\ndatabase = "{tmp_path / "db.sqlite"}"\n'
        f'[restream]\nlisten = "127.0.0.1:{free_port()}"\n'  # not 8554: a service may run
        f'[inference]\nmodel_path = "{model}"\n{extra}'
        '[[streams]]\nid = "cam"\nuri = "rtsp://127.0.0.1:9/cam"\nenable_inference = true\n')
    result = subprocess.run([sys.executable, "-m", "streamwarden", "run", "--config",
                             str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    expected = {"missing": "model.onnx does not exist",
                "not_onnx": "model.onnx is not an ONNX model",
                "labels": "labels.txt has 3 labels but model"}[problem]
    assert expected in result.stderr, result.stderr[-2000:]


def test_frames_of_several_streams_share_one_model_call(camera_factory, service_factory,
                                                        tmp_path, plugin_path, monkeypatch):
    monkeypatch.setenv("SLOW_DETECTOR_S", "0.5")  # slow enough that every stream has a frame
    camera = camera_factory(["/a", "/b", "/c"])
    streams = {sid: camera.url(f"/{sid}") for sid in "abc"}
    svc = service_factory(inference_config(tmp_path, streams, batch_size=3,
                                           plugin="tests.plugins.detectors:SlowDetector"))
    client = svc.client()
    # Wait for a full batch, not for a count of batched frames: on a busy machine one camera
    # can connect seconds after the others, and the first batches hold only two frames.
    for sid in streams:
        wait_for(lambda sid=sid: inference_health(client, sid)["inference"]["max_batch"] == 3,
                 30, message=f"{sid} batched with both others")
        assert inference_health(client, sid)["inference"]["batched_frames"] >= 1


def test_motion_gate_skips_a_still_scene(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"], PERSON_CAMERA)  # a photograph: nothing moves
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, motion_gate=True))
    client = svc.client()
    wait_for(lambda: events(client, stream_id="cam"), 30, message="the first frame is looked at")
    stats = wait_for(lambda: (s := inference_health(client, "cam")["inference"])["frames_seen"]
                     >= 20 and s, 30, message="frames seen")
    assert stats["model_calls"] <= stats["frames_seen"] / 4, stats


def test_detections_reach_mqtt(camera_factory, service_factory, tmp_path):
    from streamwarden.config.model import MqttSection
    from tests.test_mqtt import MOSQUITTO, Broker, Subscriber

    if not os.path.exists(MOSQUITTO):
        pytest.skip("mosquitto not installed (scripts/setup.sh installs it)")
    port = free_port()
    broker = Broker(tmp_path, port)
    broker.start()
    subscriber = Subscriber(port)
    try:
        camera = camera_factory(["/cam"], PERSON_CAMERA)
        config = inference_config(tmp_path, {"cam": camera.url()}).model_copy(
            update={"mqtt": MqttSection(host="127.0.0.1", port=port)})
        service_factory(config)
        payloads = wait_for(lambda: subscriber.payloads("streamwarden/cam/detection"), 30,
                            message="a detection on MQTT")
        message = json.loads(payloads[0])
        assert message["detections"][0]["label"] == "person"
    finally:
        subscriber.close()
        broker.kill()


def test_nvidia_backend_without_gpu_or_deepstream_says_so(camera_factory, service_factory,
                                                          tmp_path):
    camera = camera_factory(["/cam"], PERSON_CAMERA)
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, backend="nvidia",
                                           config_path="/etc/inference/config.txt"))
    client = svc.client()
    wait_for(lambda: events(client, stream_id="cam"), 30, message="detections on the CPU")
    status = client.get("/inference").json()
    assert status["backend"] == "nvidia" and status["state"] == "running"
    joined = " ".join(status["warnings"])
    assert "DeepStream" in joined and "on the CPU" in joined
