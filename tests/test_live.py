"""Live view: fragmented MP4 over `WS /streams/{id}/live.mp4`, read by a plain Python client."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from streamwarden.config.model import ApiSection, Config, SourceSettings, StreamConfig
from streamwarden.live.fmp4 import top_level_boxes
from tests.conftest import state_of, wait_for

FAST = SourceSettings(timeout=2, restart_timeout=1)
TOKEN = "live-token-0123456789abcdef"


def live_service(service_factory, streams: dict[str, str], token: str | None = None):
    svc = service_factory(Config(api=ApiSection(token=token), stream_defaults=FAST, streams=[
        StreamConfig(id=sid, uri=uri) for sid, uri in streams.items()]))
    client = svc.client()
    if token:
        client.headers["Authorization"] = f"Bearer {token}"
    for sid in streams:
        wait_for(lambda sid=sid: state_of(client, sid)["health"]["state"] == "streaming", 20,
                 message=f"{sid} streaming")
    return svc, client


def ws_url(svc, stream_id: str) -> str:
    return f"ws://127.0.0.1:{svc.port}/streams/{stream_id}/live.mp4"


class LiveReader:
    """Collects what one viewer receives: the init announcement, init segment and fragments."""

    def __init__(self, url: str, **kwargs):
        self.socket = connect(url, open_timeout=10, max_size=None, **kwargs).__enter__()
        self.announce: dict | None = None
        self.init: bytes | None = None
        self.fragments: list[bytes] = []

    def read(self, fragments: int, timeout: float = 15) -> LiveReader:
        deadline = time.monotonic() + timeout
        while len(self.fragments) < fragments:
            message = self.socket.recv(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(message, str):
                self.announce = json.loads(message)
                assert self.announce["type"] == "init", self.announce
            elif self.init is None:
                self.init = message
            else:
                self.fragments.append(message)
        return self

    def close(self) -> None:
        self.socket.__exit__(None, None, None)

    def __enter__(self) -> LiveReader:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def live_consumers(client, stream_id: str) -> list[dict]:
    return [c for c in state_of(client, stream_id)["statistics"]["consumers"]
            if c["kind"] == "live"]


def decoded_frames(path) -> int:
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-",
         "-progress", "pipe:1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    frames = [int(line.split("=")[1]) for line in result.stdout.splitlines()
              if line.startswith("frame=")]
    return frames[-1] if frames else 0


def test_a_viewer_gets_fragmented_mp4_that_decodes(service_factory, camera_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc, _ = live_service(service_factory, {"cam": camera.url()})
    reader = LiveReader(ws_url(svc, "cam")).read(50)
    reader.close()
    assert reader.announce["codec"].startswith("avc1.")
    assert (reader.announce["width"], reader.announce["height"]) == (640, 360)
    assert [kind for kind, _ in top_level_boxes(reader.init)] == [b"ftyp", b"moov"]
    for fragment in reader.fragments:
        assert [kind for kind, _ in top_level_boxes(fragment)] == [b"moof", b"mdat"]
    movie = tmp_path / "live.mp4"
    movie.write_bytes(reader.init + b"".join(reader.fragments))
    probe = subprocess.run(["gst-discoverer-1.0", str(movie)], capture_output=True, text=True,
                           timeout=30)
    assert "H.264" in probe.stdout and "Width: 640" in probe.stdout, probe.stdout
    assert decoded_frames(movie) == 50  # the first fragment is a keyframe: every frame decodes


def test_viewers_share_one_mux_detached_after_the_last(service_factory, camera_factory):
    camera = camera_factory(["/cam"])
    svc, client = live_service(service_factory, {"cam": camera.url()}, token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = LiveReader(ws_url(svc, "cam"), additional_headers=headers).read(5)
    signed = client.post("/auth/url-token", json={"path": "/streams/cam/live.mp4"}).json()
    second = LiveReader(f"ws://127.0.0.1:{svc.port}{signed['url']}").read(5)
    assert second.init == first.init
    assert len(live_consumers(client, "cam")) == 1
    assert state_of(client, "cam")["health"]["live_viewers"] == 2
    first.close()
    wait_for(lambda: state_of(client, "cam")["health"]["live_viewers"] == 1, 5,
             message="one viewer left")
    second.read(10)  # the remaining viewer is not disturbed
    second.close()
    wait_for(lambda: not live_consumers(client, "cam"), 5,
             message="mux detached after the last viewer")
    # and a new viewer starts it again, from a keyframe
    LiveReader(ws_url(svc, "cam"), additional_headers=headers).read(3).close()


def test_a_token_is_required(service_factory, camera_factory):
    camera = camera_factory(["/cam"])
    svc, _ = live_service(service_factory, {"cam": camera.url()}, token=TOKEN)
    with pytest.raises(InvalidStatus) as refused:  # closed before the handshake completes
        LiveReader(ws_url(svc, "cam"))
    assert refused.value.response.status_code == 403


def error_of(url: str) -> tuple[dict, int]:
    with connect(url, open_timeout=10) as socket:
        message = json.loads(socket.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    return message, closed.value.rcvd.code


def test_unknown_stream_and_h265_are_clear_errors(service_factory, camera_factory):
    camera = camera_factory(["/cam"], ["--codec", "h265"])
    svc, _ = live_service(service_factory, {"hevc": camera.url()})
    message, code = error_of(ws_url(svc, "nope"))
    assert (message["error"], code) == ("not_found", 4404)
    message, code = error_of(ws_url(svc, "hevc"))
    assert (message["error"], code) == ("unsupported_codec", 4415)
