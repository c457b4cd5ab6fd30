"""MJPEG from the shared decoder: any codec, one decoder for all users, gone with the last."""

from __future__ import annotations

import time

import cv2
import httpx
import numpy as np

from tests.conftest import state_of, wait_for
from tests.test_inference import inference_config, inference_health


def pixel_consumers(client, sid: str) -> list[dict]:
    return [c for c in state_of(client, sid)["statistics"]["consumers"] if c["kind"] == "pixels"]


class Parts:
    """JPEG parts of a multipart/x-mixed-replace body, read as they come (one iterator, so the
    connection stays open between reads)."""

    def __init__(self, response: httpx.Response):
        self._chunks = response.iter_bytes()
        self._buffer = b""

    def read(self, count: int, timeout: float = 20) -> list[bytes]:
        parts: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(parts) < count and time.monotonic() < deadline:
            self._buffer += next(self._chunks)
            while True:
                start = self._buffer.find(b"\xff\xd8")
                end = self._buffer.find(b"\xff\xd9", start + 2)
                if start < 0 or end < 0:
                    break
                parts.append(self._buffer[start:end + 2])
                self._buffer = self._buffer[end + 2:]
        return parts


def test_mjpeg_of_an_h265_camera_shares_one_decoder(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"], ["--codec", "h265"])
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, infer=False))
    client = svc.client()
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 30,
             message="streaming")
    assert pixel_consumers(client, "cam") == []
    url = f"{svc.base_url}/streams/cam/mjpeg"
    with httpx.Client(timeout=20) as one, httpx.Client(timeout=20) as two, \
            one.stream("GET", url, params={"fps": 4, "width": 320}) as first, \
            two.stream("GET", url) as second:
        assert first.headers["content-type"].startswith("multipart/x-mixed-replace")
        first_parts, second_parts = Parts(first), Parts(second)  # kept: a dropped one closes
        jpegs = first_parts.read(3)
        assert len(jpegs) == 3 and len(second_parts.read(2)) == 2
        for jpeg in jpegs:  # the decoder starts at a keyframe: no grey half-decoded frames
            picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert picture.shape[1] == 320 and picture.std() > 20, "a real, non-blank picture"
        assert len(pixel_consumers(client, "cam")) == 1, "two viewers, one decoder"
    wait_for(lambda: pixel_consumers(client, "cam") == [], 10,
             message="the decoder stops with the last viewer")


def test_mjpeg_and_inference_share_the_decoder(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(inference_config(tmp_path, {"cam": camera.url()}, fps=2))
    client = svc.client()
    wait_for(lambda: inference_health(client, "cam")["inference"]["frames_seen"] > 0, 30,
             message="inference running")
    with httpx.Client(timeout=20) as viewer, \
            viewer.stream("GET", f"{svc.base_url}/streams/cam/mjpeg", params={"fps": 10}) as mj:
        parts = Parts(mj)
        assert len(parts.read(2)) == 2
        assert len(pixel_consumers(client, "cam")) == 1
        before = inference_health(client, "cam")["inference"]["frames_submitted"]
        time.sleep(3)
        after = inference_health(client, "cam")["inference"]["frames_submitted"]
        assert after - before <= 3 * 2 + 2, "the model still gets its own rate, not MJPEG's"
        assert client.patch("/streams/cam", json={"enable_inference": False}).status_code == 200
        assert len(pixel_consumers(client, "cam")) == 1, "the viewer still needs pixels"
        assert len(parts.read(2)) == 2
    wait_for(lambda: pixel_consumers(client, "cam") == [], 10, message="decoder released")


def test_mjpeg_bad_requests(service_factory, tmp_path):
    svc = service_factory(inference_config(tmp_path, {}))
    client = svc.client()
    assert client.get("/streams/nope/mjpeg").status_code == 404
    assert client.get("/streams/..%2Fx/mjpeg").status_code in (404, 422)
    assert client.get("/streams/nope/mjpeg", params={"fps": 0}).status_code == 422
