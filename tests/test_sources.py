"""Every URI scheme ends in the same producer shape: file, HTTP, RTMP, SRT (RTSP is elsewhere).

The media is one short H.264+AAC file made once per session; servers relay it with
`-c copy` (ffmpeg) or serve it as bytes (HTTP), so nothing is encoded while tests run.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from streamwarden.config.model import ApiSection, Config, SourceSettings
from tests.conftest import free_port, state_of, wait_for

SETTINGS = SourceSettings(timeout=3, restart_timeout=1)


@pytest.fixture(scope="session")
def media_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(path)],
        check=True, timeout=120,
    )
    return path


def relay(args: list[str]) -> subprocess.Popen:
    """ffmpeg re-sending the file in a loop at its own pace, without re-encoding."""
    return subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def assert_ingests(client, stream_id: str, uri: str, audio: bool = True) -> dict:
    assert client.post("/streams", json={"id": stream_id, "uri": uri}).status_code == 201
    wait_for(lambda: state_of(client, stream_id)["health"]["state"] == "streaming", 20,
             message=f"{stream_id} streaming")
    wait_for(lambda: 20 < state_of(client, stream_id)["health"]["fps"] < 30, 6,
             message=f"{stream_id} at camera speed (25 fps)")
    view = state_of(client, stream_id)
    stats = view["statistics"]
    assert stats["video_codec"] == "h264" and (stats["width"], stats["height"]) == (640, 360)
    if audio:
        assert stats["audio_codec"] == "aac" and stats["audio_frames"] > 0
    return view


def test_file_source_is_paced_and_restarts_at_eos(service_factory, media_file):
    api = ApiSection(allowed_file_dirs=[str(media_file.parent)])  # API clients: this dir only
    client = service_factory(Config(api=api, stream_defaults=SETTINGS)).client()
    assert_ingests(client, "file", media_file.as_uri())
    wait_for(lambda: state_of(client, "file")["health"]["last_retry_reason"] == "eos", 8,
             message="end of file")
    wait_for(lambda: state_of(client, "file")["health"]["state"] == "streaming", 5,
             message="file playing again")


def test_http_source(service_factory, media_file):
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(media_file.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = service_factory(Config(stream_defaults=SETTINGS)).client()
        assert_ingests(client, "http", f"http://127.0.0.1:{server.server_port}/clip.mp4")
        assert client.post("/streams", json={
            "id": "http404", "uri": f"http://127.0.0.1:{server.server_port}/missing.mp4"
        }).status_code == 201
        wait_for(lambda: state_of(client, "http404")["health"]["last_retry_reason"] == "error",
                 5, message="404 reported")
        assert "404" in state_of(client, "http404")["health"]["last_error"]
    finally:
        server.shutdown()


def test_srt_source(service_factory, media_file):
    port = free_port()
    publisher = relay(["-i", str(media_file), "-c", "copy", "-f", "mpegts",
                       f"srt://127.0.0.1:{port}?mode=listener"])
    try:
        time.sleep(0.5)
        client = service_factory(Config(stream_defaults=SETTINGS)).client()
        assert_ingests(client, "srt", f"srt://127.0.0.1:{port}")
    finally:
        publisher.kill()
        publisher.wait()


NGINX_RTMP = """
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
error_log {root}/error.log;
pid {root}/nginx.pid;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}
"""


@pytest.mark.skipif(not shutil.which("nginx") or
                    not Path("/usr/lib/nginx/modules/ngx_rtmp_module.so").exists(),
                    reason="nginx RTMP module not installed (scripts/setup.sh installs it)")
def test_rtmp_source(service_factory, media_file, tmp_path):
    port = free_port()
    (tmp_path / "nginx.conf").write_text(NGINX_RTMP.format(root=tmp_path, port=port))
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                             stderr=subprocess.DEVNULL)
    publisher = None
    try:
        time.sleep(0.5)
        publisher = relay(["-i", str(media_file), "-c", "copy", "-f", "flv",
                           f"rtmp://127.0.0.1:{port}/live/cam"])
        time.sleep(1)
        client = service_factory(Config(stream_defaults=SETTINGS)).client()
        assert_ingests(client, "rtmp", f"rtmp://127.0.0.1:{port}/live/cam")
    finally:
        for process in (publisher, nginx):
            if process is not None:
                process.kill()
                process.wait()
