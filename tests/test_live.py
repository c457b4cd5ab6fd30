"""Live view: fragmented MP4 over `WS /streams/{id}/live.mp4`, read by a plain Python client."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from streamwarden.config.model import ApiSection, Config, SourceSettings, StreamConfig
from streamwarden.live.fmp4 import top_level_boxes
from tests.conftest import free_port, state_of, wait_for

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
        # max_queue=None: frames are read off the socket at once, so close() is quick
        self.socket = connect(url, open_timeout=10, max_size=None, max_queue=None,
                              **kwargs).__enter__()
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


def first_sample_is_sync(fragment: bytes) -> bool:
    """The sample flags of the fragment's trun (one sample, flags 0xF01: see fmp4.py)."""
    at = fragment.index(b"trun") + 4 + 4 + 4 + 4  # type, version/flags, count, data offset
    _duration, _size, flags = struct.unpack_from(">III", fragment, at)
    return not flags & 0x00010000


def live_consumers(client, stream_id: str) -> list[dict]:
    return [c for c in state_of(client, stream_id)["statistics"]["consumers"]
            if c["kind"] == "live"]


def decoded_frames(path) -> int:
    """Frames ffprobe decodes from the file; any decoder complaint fails the test."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    return int(result.stdout.strip())


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
    assert first_sample_is_sync(reader.fragments[0])
    assert sum(map(first_sample_is_sync, reader.fragments)) == 2  # GOP 25: frames 0 and 25
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
    assert first_sample_is_sync(second.fragments[0])  # a late joiner starts at a keyframe
    assert len(live_consumers(client, "cam")) == 1
    assert state_of(client, "cam")["health"]["live_viewers"] == 2
    assert 'streamwarden_live_viewers{stream="cam"} 2.0' in client.get("/metrics").text
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
    with pytest.raises(InvalidStatus) as refused:  # refused in the handshake
        LiveReader(ws_url(svc, "cam"))
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"] == "unauthorized"


def error_of(url: str) -> tuple[dict, int]:
    with connect(url, open_timeout=10) as socket:
        message = json.loads(socket.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    return message, closed.value.rcvd.code


def test_an_unknown_stream_is_a_clear_error_and_h265_is_muxed(service_factory, camera_factory,
                                                               tmp_path):
    camera = camera_factory(["/cam"], ["--codec", "h265"])
    svc, _ = live_service(service_factory, {"hevc": camera.url()})
    message, code = error_of(ws_url(svc, "nope"))
    assert (message["error"], code) == ("not_found", 4404)
    with LiveReader(ws_url(svc, "hevc")) as reader:
        reader.read(30)
    # whether a browser plays it is for MSE to say; the fMP4 itself is valid H.265
    assert reader.announce["codec"].startswith("hvc1.1.")  # Main profile
    assert reader.announce["mime"] == f'video/mp4; codecs="{reader.announce["codec"]}"'
    movie = tmp_path / "hevc.mp4"
    movie.write_bytes(reader.init + b"".join(reader.fragments))
    assert decoded_frames(movie) == 30


def stalled_viewer(port: int, path: str) -> socket.socket:
    """Completes the WebSocket handshake, then never reads (tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    return sock


def test_a_stalled_viewer_is_dropped_not_waited_for(service_factory, camera_factory):
    # 6 Mbit/s of noise: the stalled socket's kernel buffers (MBs on loopback) fill sooner
    camera = camera_factory(["/cam"], ["--pattern", "snow", "--bitrate", "6000"])
    svc, client = live_service(service_factory, {"cam": camera.url()})
    with LiveReader(ws_url(svc, "cam")) as reader:
        reader.read(5)
        stalled = stalled_viewer(svc.port, "/streams/cam/live.mp4")
        try:
            wait_for(lambda: state_of(client, "cam")["health"]["live_viewers"] == 2, 5,
                     message="both viewers counted")
            started = time.monotonic()
            while state_of(client, "cam")["health"]["live_viewers"] == 2:
                reader.read(len(reader.fragments) + 25)  # the reading viewer keeps receiving
                assert time.monotonic() - started < 60, "the stalled viewer was never dropped"
            reader.read(len(reader.fragments) + 25)
        finally:
            stalled.close()
    assert state_of(client, "cam")["health"]["retry_count"] == 0


def decode_times(fragment: bytes) -> int:
    at = fragment.index(b"tfdt") + 4 + 4  # type, version/flags (version 1: 64 bits)
    return struct.unpack_from(">Q", fragment, at)[0]


def test_a_viewer_stays_through_a_camera_restart(service_factory, camera_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc, client = live_service(service_factory, {"cam": camera.url()})
    with LiveReader(ws_url(svc, "cam")) as reader:
        reader.read(25)
        camera.kill()
        wait_for(lambda: state_of(client, "cam")["health"]["state"] == "retrying", 10,
                 message="camera down")
        before = len(reader.fragments)
        camera.start()
        reader.read(before + 50, timeout=20)
    times = [decode_times(f) for f in reader.fragments]
    assert times == sorted(set(times))  # one timeline, always forwards, for the SourceBuffer
    assert first_sample_is_sync(reader.fragments[before])  # resumes at a keyframe
    movie = tmp_path / "restart.mp4"
    movie.write_bytes(reader.init + b"".join(reader.fragments))
    assert decoded_frames(movie) == len(reader.fragments)


def test_viewers_get_h265_when_the_codec_turns_out_h265_or_are_told_the_stream_goes(
        service_factory, camera_factory):
    port = free_port()  # no camera there yet: the codec is unknown when the viewer joins
    svc, client = live_service(service_factory, {}, token=None)
    for sid in ("late", "gone"):
        assert client.post("/streams", json={"id": sid, "uri": f"rtsp://127.0.0.1:{port}/{sid}"}
                           ).status_code == 201
    with connect(ws_url(svc, "late"), open_timeout=10) as late, \
            connect(ws_url(svc, "gone"), open_timeout=10) as gone:
        wait_for(lambda: state_of(client, "late")["health"]["live_viewers"] == 1, 5,
                 message="viewer waiting for a picture")
        assert client.delete("/streams/gone").status_code == 204
        assert json.loads(gone.recv(timeout=10))["error"] == "stream_removed"
        camera_factory(["/late"], ["--codec", "h265"], port=port)
        announce = json.loads(late.recv(timeout=20))
        assert announce["type"] == "init" and announce["codec"].startswith("hvc1."), announce
    wait_for(lambda: state_of(client, "late")["health"]["state"] == "streaming", 10,
             message="the stream is fine")  # the init comes with the caps, before frames
    wait_for(lambda: not live_consumers(client, "late"), 5, message="mux detached")



def test_byte_stream_access_units_become_mp4_samples(tmp_path):
    """Parsebin hands the tee "avc" for every source tried here (RTSP, files, TS), so the
    byte-stream path is checked on the cached camera clip's Annex B units directly."""
    from streamwarden.demo.clip import ClipSpec, load_clip
    from streamwarden.live.annexb import AnnexBConverter
    from streamwarden.live.fmp4 import fragment, init_segment

    clip = load_clip(ClipSpec())
    converter = AnnexBConverter()
    init, fragments = None, []
    for index, unit in enumerate(clip.video * 2):  # twice round: repeated SPS/PPS, no new init
        sample, avcc = converter.convert(unit.data)
        if avcc is not None:
            assert init is None
            init = init_segment(avcc, 640, 360)
        fragments.append(fragment(index + 1, index * 3600, 3600, 0, unit.keyframe, sample))
    movie = tmp_path / "annexb.mp4"
    movie.write_bytes(init + b"".join(fragments))
    assert decoded_frames(movie) == 2 * len(clip.video)
