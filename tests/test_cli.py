"""The `streamwarden` command as an operator runs it: demo, config, signals, log format."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, wait_for


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamwarden", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def get(url: str):
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[float, str]:
    """Send `sig`; return (seconds until exit, stderr)."""
    sent = time.monotonic()
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"did not exit within 10 s of signal {sig}:\n{err[-2000:]}")
    return time.monotonic() - sent, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_demo_streams_and_stops_cleanly(sig, tmp_path):
    port = free_port()
    process = start("demo", "--listen", f"127.0.0.1:{port}", cwd=tmp_path)
    try:
        def demo_streaming():
            response = get(f"http://127.0.0.1:{port}/health")
            if response is None or response.status_code != 200:
                return None
            entries = {e["id"]: e for e in response.json()}
            demo = entries.get("demo")
            return demo if demo and demo["state"] == "streaming" and demo["fps"] > 20 else None

        demo = wait_for(demo_streaming, 60, interval=0.3, message="demo stream at 25 fps")
        assert demo["is_healthy"] and demo["bitrate_kbps"] > 0
    finally:
        elapsed, err = stop(process, sig)
    assert process.returncode == 0, err[-2000:]
    assert elapsed < 5, f"shutdown took {elapsed:.1f}s"
    assert "stream demo: streaming -> stopped" in err
    assert "Traceback" not in err


def test_demo_shows_both_cameras_recordings_and_a_detected_person(tmp_path):
    """`streamwarden demo`, as a newcomer starts it: within a minute both cameras stream, both
    are being recorded and the person scene has person events; no camera, GPU or network."""
    port = free_port()
    config = tmp_path / "c.toml"  # a free restream port: the default one may be taken
    config.write_text(f'[restream]\nlisten = "127.0.0.1:{free_port()}"\n')
    started = time.monotonic()
    process = start("demo", "--config", str(config), "--listen", f"127.0.0.1:{port}",
                    cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        def both_streaming():
            response = get(f"{base}/health")
            states = {e["id"]: e["state"] for e in response.json()} if response else {}
            return states == {"demo": "streaming", "person": "streaming"}

        wait_for(both_streaming, 45, interval=0.5, message="both demo cameras streaming")
        wait_for(lambda: {r["stream_id"] for r in httpx.get(f"{base}/recordings").json()}
                 == {"demo", "person"}, 15, interval=0.5, message="both recorded")
        people = wait_for(lambda: httpx.get(f"{base}/events", params={
            "stream_id": "person", "label": "person"}).json(), 45, interval=0.5,
            message="a person detected in the demo")
        assert time.monotonic() - started < 60, "the demo's first minute shows everything"
        assert people[0]["confidence"] >= 0.5
        streams = {s["id"]: s for s in httpx.get(f"{base}/streams").json()}
        assert streams["person"]["enable_inference"] and streams["person"]["recording"]
        assert streams["demo"]["recording"] and not streams["demo"]["enable_inference"]
        assert httpx.get(f"{base}/streams/person/snapshot.jpg").content[:2] == b"\xff\xd8"
    finally:
        _, err = stop(process)
    assert process.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]


def test_sigterm_with_viewers_connected_closes_them_and_exits_cleanly(tmp_path):
    """A /ws client, a live viewer and an MJPEG viewer are told goodbye (1001, end of stream)
    and the process exits 0 within seconds, without uvicorn cancelling a handler."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    port = free_port()
    config = tmp_path / "c.toml"  # a free restream port: the default one may be taken
    config.write_text(f'[restream]\nlisten = "127.0.0.1:{free_port()}"\n')
    process = start("demo", "--config", str(config), "--listen", f"127.0.0.1:{port}",
                    cwd=tmp_path)
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    try:
        wait_for(lambda: (r := get(f"{base}/health")) is not None and r.status_code == 200
                 and r.json() and r.json()[0]["state"] == "streaming", 60, interval=0.3,
                 message="demo streaming")
        with connect(f"{ws_base}/ws", open_timeout=10) as events, \
                connect(f"{ws_base}/streams/demo/live.mp4", open_timeout=10) as viewer, \
                httpx.Client(timeout=10) as http, \
                http.stream("GET", f"{base}/streams/demo/mjpeg") as mjpeg:
            assert json.loads(events.recv(timeout=10))["type"] == "snapshot"
            assert json.loads(viewer.recv(timeout=10))["type"] == "init"
            chunks = mjpeg.iter_bytes()
            assert b"image/jpeg" in next(chunks)
            elapsed, err = stop(process)
            for socket in (events, viewer):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        socket.recv(timeout=5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            rest = b"".join(chunks)  # the MJPEG response ended properly: no protocol error
            assert rest.count(b"--streamwarden-frame") < 50
    finally:
        if process.poll() is None:
            stop(process)
    assert process.returncode == 0, err[-3000:]
    assert elapsed < 5, f"shutdown took {elapsed:.1f}s"
    assert "Traceback" not in err and "ERROR" not in err, err[-3000:]
    assert "graceful shutdown exceeded" not in err


def test_json_log_lines(tmp_path):
    port, closed = free_port(), free_port()
    config = tmp_path / "c.toml"
    config.write_text(
        '[stream_defaults]\ntimeout = "1s"\nrestart_timeout = "500ms"\n'
        f'[[streams]]\nid = "gone"\nuri = "rtsp://u:pw123@127.0.0.1:{closed}/x"\n'
    )
    process = start("run", "--config", str(config), "--listen", f"127.0.0.1:{port}",
                    "--log-format", "json", cwd=tmp_path)
    try:
        wait_for(lambda: (r := get(f"http://127.0.0.1:{port}/health")) is not None
                 and r.json() and r.json()[0]["retry_count"] >= 2, 20, message="retries")
    finally:
        _, err = stop(process)
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    changes = [r for r in records if r.get("stream_id") == "gone" and "state" in r]
    assert changes, records
    retry = next(r for r in changes if r["state"] == "retrying")
    assert retry["reason"].startswith("error") and retry["uri"].endswith(f"{closed}/x")
    assert "pw123" not in err


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "streamwarden", "run", "--listen", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_listen_option_is_a_clear_error():
    result = subprocess.run([sys.executable, "-m", "streamwarden", "run", "--listen", "8080"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "HOST:PORT" in result.stderr


def client_cli(*args: str, url: str, token: str | None = None) -> subprocess.CompletedProcess:
    extra = ["--token", token] if token else []
    return subprocess.run([sys.executable, "-m", "streamwarden", *args, "--url", url, *extra],
                          capture_output=True, text=True, timeout=60)


def test_client_verbs_and_exit_codes(service_factory, camera_factory):
    from streamwarden.config.model import ApiSection, Config

    token = "client-token-0123456789abcdef"
    camera = camera_factory(["/cam"])
    svc = service_factory(Config(api=ApiSection(token=token)))
    url = svc.base_url
    added = client_cli("streams", "add", "gate", camera.url(), "--record", url=url, token=token)
    assert added.returncode == 0 and "added gate" in added.stdout
    assert client_cli("streams", "add", "gate", camera.url(), url=url,
                      token=token).returncode == 1  # duplicate: refused, with the reason
    wait_for(lambda: client_cli("health", url=url, token=token).returncode == 0, 15,
             interval=0.5, message="healthy")
    listing = client_cli("streams", "list", "--json", url=url, token=token)
    assert json.loads(listing.stdout)[0]["recording"] is True
    stopped = client_cli("record", "stop", "gate", url=url, token=token)
    assert stopped.returncode == 0 and "not recording" in stopped.stdout
    started = client_cli("record", "start", "gate", "--pre-roll", "2s", url=url, token=token)
    assert started.returncode == 0 and "gate: recording" in started.stdout
    assert client_cli("streams", "list", url=url).returncode == 1  # no token: 401
    assert client_cli("streams", "rm", "nope", url=url, token=token).returncode == 1
    assert client_cli("streams", "rm", "gate", url=url, token=token).returncode == 0
    unreachable = client_cli("health", url=f"http://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
    bad_usage = subprocess.run([sys.executable, "-m", "streamwarden", "streams", "frobnicate"],
                               capture_output=True, text=True, timeout=30)
    assert bad_usage.returncode == 2


def test_health_exit_code_reports_unhealthy(service_factory):
    svc = service_factory()
    client = svc.client()
    client.post("/streams", json={"id": "dead", "uri": f"rtsp://127.0.0.1:{free_port()}/x"})
    result = client_cli("health", url=svc.base_url)
    assert result.returncode == 1 and "UNHEALTHY" in result.stdout
