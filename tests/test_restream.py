"""Restream: independent RTSP readers (ffmpeg, GStreamer, a raw socket) on rtsp://…:port/<id>."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import subprocess
import time

import pytest

from streamwarden.config.model import Config, RestreamSection, SourceSettings, StreamConfig
from streamwarden.demo.stamp import read_stamps
from streamwarden.gst.init import Gst
from tests.conftest import state_of, wait_for

FAST = SourceSettings(timeout=2, restart_timeout=1)


def restream_service(service_factory, streams: dict[str, str]):
    svc = service_factory(Config(stream_defaults=FAST, streams=[
        StreamConfig(id=sid, uri=uri) for sid, uri in streams.items()]))
    client = svc.client()
    for sid in streams:
        wait_for(lambda sid=sid: state_of(client, sid)["health"]["state"] == "streaming", 20,
                 message=f"{sid} streaming")
    return svc, client


def probe(url: str, transport: str = "tcp") -> dict:
    result = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", transport,
                             "-show_streams", "-of", "json", url],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return {s["codec_type"]: s for s in json.loads(result.stdout)["streams"]}


def read_frames(url: str, transport: str = "tcp", seconds: float = 4, copy: bool = False) -> int:
    """Frames ffmpeg got from the URL in `seconds` (decoded unless `copy`)."""
    codec = ["-c", "copy"] if copy else []
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i", url,
         "-t", str(seconds), "-map", "0:v", *codec, "-f", "null", "-", "-progress", "pipe:1"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr
    frames = [int(line.split("=")[1]) for line in result.stdout.splitlines()
              if line.startswith("frame=")]
    return frames[-1] if frames else 0


def camera_connections(port: int) -> int:
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    return len([line for line in out.splitlines() if line.strip()])


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_readers_get_the_cameras_stream_untouched(service_factory, camera_factory, transport):
    camera = camera_factory(["/cam"], ["--codec", "h265", "--audio"])
    svc, _ = restream_service(service_factory, {"cam": camera.url()})
    url = f"rtsp://127.0.0.1:{svc.rtsp_port}/cam"
    streams = probe(url, transport)
    original = probe(camera.url(), transport)
    for kind in ("video", "audio"):
        assert streams[kind]["codec_name"] == original[kind]["codec_name"]
    assert (streams["video"]["width"], streams["video"]["height"]) == (640, 360)
    assert read_frames(url, transport) >= 75  # 4 s at 25 fps, decoded without errors


def test_ten_readers_one_camera_connection(service_factory, camera_factory):
    camera = camera_factory(["/cam"])
    svc, client = restream_service(service_factory, {"cam": camera.url()})
    url = f"rtsp://127.0.0.1:{svc.rtsp_port}/cam"
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        readers = [pool.submit(read_frames, url, "tcp", 6, True) for _ in range(10)]
        time.sleep(3)
        assert camera_connections(camera.port) == 1
        frames = [reader.result() for reader in readers]
    assert min(frames) >= 100, frames
    assert state_of(client, "cam")["health"]["retry_count"] == 0
    wait_for(lambda: not any(c["kind"] == "restream" for c in
                             state_of(client, "cam")["statistics"]["consumers"]), 5,
             message="relay detached after the last reader")


class GstReader:
    """An independent GStreamer RTSP client counting the frames it receives."""

    def __init__(self, url: str):
        self.pipeline = Gst.parse_launch(
            f"rtspsrc location={url} protocols=tcp latency=100 ! rtph264depay ! h264parse ! "
            "fakesink name=sink sync=false")
        self.frames = 0
        self.arrivals: list[float] = []
        pad = self.pipeline.get_by_name("sink").get_static_pad("sink")
        pad.add_probe(Gst.PadProbeType.BUFFER, self._count)
        self.pipeline.set_state(Gst.State.PLAYING)

    def _count(self, _pad, _info):
        self.frames += 1
        self.arrivals.append(time.monotonic())
        return Gst.PadProbeReturn.OK

    def fps_over(self, seconds: float) -> float:
        start = time.monotonic()
        before = self.frames
        time.sleep(seconds)
        return (self.frames - before) / (time.monotonic() - start)

    def stop(self) -> None:
        self.pipeline.set_state(Gst.State.NULL)


def test_readers_survive_a_camera_restart(service_factory, camera_factory):
    camera = camera_factory(["/cam"])
    svc, client = restream_service(service_factory, {"cam": camera.url()})
    reader = GstReader(f"rtsp://127.0.0.1:{svc.rtsp_port}/cam")
    try:
        wait_for(lambda: reader.frames > 25, 10, message="reader receiving")
        camera.kill()
        wait_for(lambda: state_of(client, "cam")["health"]["state"] == "retrying", 5,
                 message="camera down")
        frames_during_outage = reader.frames
        time.sleep(2)
        camera.start()
        wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 10,
                 message="camera back")
        wait_for(lambda: reader.frames > frames_during_outage + 50, 10,
                 message="the same reader gets frames again")
        assert reader.fps_over(2) > 20
    finally:
        reader.stop()


def stalled_rtsp_reader(port: int, path: str) -> socket.socket:
    """DESCRIBE, SETUP (TCP interleaved) and PLAY, then never read again."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    url = f"rtsp://127.0.0.1:{port}{path}"

    def request(lines: str) -> str:
        sock.sendall(lines.encode())
        time.sleep(0.3)
        return sock.recv(65536).decode(errors="replace")

    request(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")
    reply = request(f"SETUP {url}/stream=0 RTSP/1.0\r\nCSeq: 2\r\n"
                    "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
    session = next(line.split(":", 1)[1].split(";")[0].strip()
                   for line in reply.splitlines() if line.lower().startswith("session:"))
    sock.sendall(f"PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n".encode())
    return sock


def test_a_stalled_reader_slows_no_one(service_factory, camera_factory):
    camera = camera_factory(["/cam"])
    svc, client = restream_service(service_factory, {"cam": camera.url()})
    assert client.post("/streams/cam/record").status_code == 200
    reader = GstReader(f"rtsp://127.0.0.1:{svc.rtsp_port}/cam")
    stalled = stalled_rtsp_reader(svc.rtsp_port, "/cam")
    try:
        wait_for(lambda: reader.frames > 25, 10, message="reader receiving")
        time.sleep(5)  # long enough for the stalled socket's buffers to fill
        assert reader.fps_over(4) > 22
        health = state_of(client, "cam")["health"]
        assert health["fps"] > 22 and health["recording"] and health["retry_count"] == 0
        gaps = [b - a for a, b in zip(reader.arrivals[-80:], reader.arrivals[-79:],
                                      strict=False)]
        assert max(gaps) < 0.5
    finally:
        stalled.close()
        reader.stop()


class StampReader(GstReader):
    """A GstReader that also tells camera frames (stamped by the camera) from slate frames."""

    def __init__(self, url: str):
        self.camera_frames = 0
        super().__init__(url)

    def _count(self, pad, info):
        buffer = info.get_buffer()
        if read_stamps(bytes(buffer.extract_dup(0, buffer.get_size()))):
            self.camera_frames += 1
        return super()._count(pad, info)


def slate_frames(client) -> int:
    return next(c for c in state_of(client, "cam")["statistics"]["consumers"]
                if c["kind"] == "restream")["slate_frames"]


def test_slate_while_the_camera_is_down(service_factory, camera_factory):
    camera = camera_factory(["/cam"])
    svc = service_factory(Config(stream_defaults=FAST, restream=RestreamSection(
        fallback="slate"), streams=[StreamConfig(id="cam", uri=camera.url())]))
    client = svc.client()
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 20,
             message="streaming")
    url = f"rtsp://127.0.0.1:{svc.rtsp_port}/cam"
    reader = StampReader(url)
    try:
        wait_for(lambda: reader.camera_frames > 25, 10, message="camera frames")
        camera.kill()
        wait_for(lambda: reader.frames > reader.camera_frames + 4, 10,
                 message="slate frames to the connected reader")
        # a reader joining during the outage decodes the slate, then the camera again, with
        # no decoder errors at the switch (read_frames fails on any)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            decoding = pool.submit(read_frames, url, "tcp", 10)
            time.sleep(3)
            camera.start()
            wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 10,
                     message="camera back")
            back = reader.camera_frames
            wait_for(lambda: reader.camera_frames > back + 25, 10,
                     message="camera frames again")
            assert decoding.result() >= 4 * 3 + 25
        slate = slate_frames(client)
        time.sleep(1)
        assert slate_frames(client) == slate  # the slate has stopped
    finally:
        reader.stop()
