"""The activity gate end to end: a still scene decodes keyframes only; a box walking into it
is detected within GOP + hold. A zoo camera serves the `appear` scene (tests/zoo/spec.py:
still for `APPEAR_AT` s, then a textured box crosses until the loop ends; every frame is
logged with its sequence number and wall time), the bright-box detector finds the box."""

from __future__ import annotations

import json
import os
import time

import pytest
from websockets.sync.client import connect

from streamwarden.config.model import (
    AppSection,
    Config,
    InferenceSection,
    SourceSettings,
    StreamConfig,
)
from tests.conftest import REPO, state_of, wait_for
from tests.zoo.spec import CameraSpec, MediaSpec

FPS, LOOP_S, APPEAR_AT, GOP_S, HOLD_S = 25, 12, 8.4, 1.0, 1.0
SCENE = MediaSpec(width=640, height=360, fps=FPS, seconds=LOOP_S, gop_seconds=GOP_S,
                  scene="appear", appear_at=APPEAR_AT)
APPEAR_FRAME = round(APPEAR_AT * FPS)  # index in the loop of the first frame with the box
LOOP_FRAMES = LOOP_S * FPS


@pytest.fixture
def plugin_path(monkeypatch):
    """Let the worker import tests.plugins (it runs with the repository as working dir)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))


def decoder(client) -> dict:
    stats = state_of(client, "cam")["statistics"]
    pixels = next(c for c in stats["consumers"] if c["kind"] == "pixels")
    return {**pixels, "keyframes": stats["keyframes"]}


def model_stats(client) -> dict:
    return next(h for h in client.get("/health").json() if h["id"] == "cam")["inference"]


def next_appearance(camera) -> tuple[int, float]:
    """(sequence number, seconds from now) of the next frame in which the box appears."""
    last = camera.frames_sent()[-1]
    into_loop = last.sequence % LOOP_FRAMES
    frames_left = (APPEAR_FRAME - into_loop) % LOOP_FRAMES
    return last.sequence + frames_left, frames_left / FPS - (time.time() - last.wall_time)


def test_still_scene_decodes_keyframes_only_and_a_box_walking_in_is_detected(
        zoo_camera, service_factory, tmp_path, plugin_path):
    camera = zoo_camera(CameraSpec(media=SCENE))
    config = Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        stream_defaults=SourceSettings(timeout=5, restart_timeout=1),
        inference=InferenceSection(plugin="tests.plugins.boxes:BrightBoxDetector", fps=5,
                                   activity_gate=True, activity_hold=HOLD_S),
        streams=[StreamConfig(id="cam", uri=camera.url, enable_inference=True)])
    svc = service_factory(config)
    client = svc.client()
    wait_for(lambda: decoder(client)["activity"] == "idle", 30, message="the gate idle")

    # a still stretch of at least 4 s before the box comes: keyframes only are decoded
    seq, due_in = next_appearance(camera)
    if due_in < 5.5:
        time.sleep(due_in + 3 + HOLD_S)  # the box goes by; the next loop starts still
        wait_for(lambda: decoder(client)["activity"] == "idle", 10, message="idle again")
        seq, due_in = next_appearance(camera)
    before, calls_before = decoder(client), model_stats(client)
    time.sleep(min(due_in - 1.0, 6.0))
    after, calls_after = decoder(client), model_stats(client)
    assert after["activity"] == "idle"
    calls = calls_after["model_calls"] - calls_before["model_calls"]
    assert calls <= 1, f"{calls} model calls in a still scene (the motion gate follows the gate)"
    keyframes = after["keyframes"] - before["keyframes"]
    decoded = after["frames_decoded"] - before["frames_decoded"]
    gated = after["frames_gated"] - before["frames_gated"]
    assert keyframes >= 3
    # the same still picture: a keyframe every 10 s (`keyframe_refresh`), not every GOP
    assert decoded <= 2, f"{decoded} decoded for {keyframes} keyframes"
    assert gated >= (FPS - 2) * keyframes  # the delta frames were kept from the decoder

    # the box walks in: the first detection message arrives within GOP + hold
    with connect(f"ws://127.0.0.1:{svc.port}/ws") as ws:
        deadline = time.monotonic() + due_in + 10
        arrived = None
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message["type"] == "detection" and message["stream_id"] == "cam":
                arrived = time.time()
                break
    assert arrived is not None, "the box was never detected"
    appeared = next(f for f in camera.frames_sent() if f.sequence == seq).wall_time
    delay = arrived - appeared
    print(f"\nactivity gate: detected {delay:.2f} s after the box appeared "
          f"(GOP {GOP_S} s, hold {HOLD_S} s)")
    assert 0 < delay < GOP_S + HOLD_S + 2.0
    assert decoder(client)["activity"] == "active"
