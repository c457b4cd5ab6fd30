"""Reloading the config file on a running service: only what changed is touched.

One camera process serves every stream (a path each) and one service runs each scenario, so
the whole file takes seconds. What "not touched" means is checked where it shows: the same
`Stream` object, its retry count, its frame counter still rising from where it was, and the
recorder's open segment (same index row, no new one, no segment cut).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from streamwarden.recording.recorder import Recorder
from tests.conftest import free_port, state_of, wait_for
from tests.test_mqtt import MOSQUITTO, Broker, Subscriber

if TYPE_CHECKING:
    from streamwarden.ingest.stream import Stream

# The defaults' timeouts (5 s without data restarts a source): a busy test machine must not
# make an untouched stream reconnect and fail the "no reconnect" checks.
FAST = '[stream_defaults]\nrestart_timeout = "1s"\n'


def stream_toml(sid: str, uri: str, **keys: object) -> str:
    lines = [f'[[streams]]\nid = "{sid}"\nuri = "{uri}"']
    for key, value in keys.items():
        shown = str(value).lower() if isinstance(value, bool) else f'"{value}"'
        lines.append(f"{key} = {shown}")
    return "\n".join(lines) + "\n"


def streaming(client: httpx.Client, *ids: str) -> None:
    for sid in ids:
        wait_for(lambda sid=sid: client.get(f"/streams/{sid}").status_code == 200
                 and state_of(client, sid)["health"]["state"] == "streaming", 20,
                 message=f"{sid} streaming")


def frames(client: httpx.Client, sid: str) -> int:
    return state_of(client, sid)["statistics"]["frames"]


def open_segment(client: httpx.Client, sid: str) -> dict | None:
    rows = client.get("/recordings", params={"stream_id": sid}).json()
    return next((r for r in rows if r["status"] == "recording"), None)


class RtspReader:
    """A raw RTSP client on rtsp://127.0.0.1:port/path with basic auth."""

    def __init__(self, port: int, path: str, user: str, password: str):
        self.url = f"rtsp://127.0.0.1:{port}{path}"
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = f"Authorization: Basic {auth}\r\n"
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.cseq = 0

    def request(self, method: str, url: str, headers: str = "") -> str:
        self.cseq += 1
        self.sock.sendall(f"{method} {url} RTSP/1.0\r\nCSeq: {self.cseq}\r\n{self.headers}"
                          f"{headers}\r\n".encode())
        return self.sock.recv(65536).decode("latin-1")

    def status(self) -> int:
        """A DESCRIBE's status code: 200 while the path is served, 404 once it is not."""
        return int(self.request("DESCRIBE", self.url, "Accept: application/sdp\r\n").split()[1])

    def play(self) -> RtspReader:
        assert self.status() == 200
        reply = self.request("SETUP", f"{self.url}/stream=0",
                             "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n")
        session = next(line.split(":", 1)[1].split(";")[0].strip()
                       for line in reply.splitlines() if line.lower().startswith("session:"))
        self.request("PLAY", self.url, f"Session: {session}\r\n")
        return self

    def closed_by_server(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(65536):
                    return True
            except TimeoutError:
                pass
        return False

    def close(self) -> None:
        self.sock.close()


@dataclass
class Untouched:
    """What must not change across the reload for streams it leaves alone."""

    streams: dict[str, Stream]
    retries: dict[str, int]
    segment: dict
    recorder: Recorder
    segments: int
    frames: int

    @classmethod
    def of(cls, svc, client: httpx.Client, ids: tuple[str, ...]) -> Untouched:
        streams = {sid: svc.manager.get(sid) for sid in ids}
        segment = wait_for(lambda: open_segment(client, "a"), 15, message="a's open segment")
        recorder = streams["a"].consumer(Recorder)
        return cls(streams, {sid: s.supervisor.retry_count for sid, s in streams.items()},
                   segment, recorder, recorder.stats()["segments"], frames(client, "a"))

    def check(self, svc, client: httpx.Client) -> None:
        for sid, stream in self.streams.items():  # the same stream, no reconnect
            assert svc.manager.get(sid) is stream
            assert stream.supervisor.retry_count == self.retries[sid]
        wait_for(lambda: frames(client, "a") > self.frames + 25, 10,
                 message="a's frames counting on")
        assert open_segment(client, "a")["id"] == self.segment["id"]  # not cut
        assert self.streams["a"].consumer(Recorder) is self.recorder
        assert self.recorder.stats()["segments"] == self.segments
        assert len(client.get("/recordings", params={"stream_id": "a"}).json()) == 1


def test_reload_touches_only_what_changed(service_factory, camera_factory, tmp_path):
    camera = camera_factory(["/a", "/b", "/c", "/r", "/d"])
    url = camera.url
    secret_uri = f"rtsp://viewer:s3cret@127.0.0.1:{camera.port}/a"
    head = FAST + '[restream]\nuser = "reader"\npassword = "hunter2"\n'
    path = tmp_path / "streamwarden.toml"
    path.write_text(head + stream_toml("a", secret_uri, enable_recording=True)
                    + stream_toml("b", url("/b")) + stream_toml("c", url("/c"))
                    + stream_toml("r", url("/r")))
    svc = service_factory(config_file=path)
    client = svc.client()
    assert client.post("/streams", json={"id": "x", "uri": url("/d")}).status_code == 201
    assert client.post("/streams", json={"id": "d", "uri": url("/d")}).status_code == 201
    streaming(client, "a", "b", "c", "r", "x", "d")
    untouched = Untouched.of(svc, client, ("a", "r", "x"))
    old_b, old_d = svc.manager.get("b"), svc.manager.get("d")
    reader = RtspReader(svc.rtsp_port, "/r", "reader", "hunter2").play()

    # b: new latency (restart); c: gone; r: restream off, recording on (in place);
    # d: the file takes the API stream's id; x (API) and a (unchanged) are left alone
    path.write_text(head + "[api]\nmax_body_bytes = 4096\n[recording]\nretention = \"1d\"\n"
                    + stream_toml("a", secret_uri, enable_recording=True)
                    + stream_toml("b", url("/b"), latency="300ms")
                    + stream_toml("r", url("/r"), restream=False, enable_recording=True)
                    + stream_toml("d", url("/d")))
    answer = client.post("/config/reload")
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["ok"] and result["trigger"] == "api" and result["errors"] == []
    assert result["applied"] == [
        "stream c removed",
        "stream d replaces the stream added through the API with the same id",
        "stream b restarted (latency)",
        "stream r changed in place (enable_recording, restream)",
        "recording.retention",
    ]
    assert result["needs_restart"] == ["api.max_body_bytes"]
    assert svc.service.storage_limits.section.retention == 86400  # the next janitor run's

    assert client.get("/streams/c").status_code == 404
    streaming(client, "b", "d")
    assert svc.manager.get("b") is not old_b and svc.manager.get("b").settings.latency == 0.3
    assert svc.manager.get("d") is not old_d and svc.manager.get("d").origin == "config"
    assert reader.closed_by_server(5)  # restream turned off: its reader is let go
    reader.close()
    again = RtspReader(svc.rtsp_port, "/r", "reader", "hunter2")
    assert again.status() == 404
    again.close()
    wait_for(lambda: state_of(client, "r")["health"]["recording"], 10, message="r recording")
    untouched.check(svc, client)
    check_config_view(client, path, result, camera.port)
    check_a_broken_file_changes_nothing(svc, client, path, untouched)


def check_config_view(client: httpx.Client, path: Path, result: dict, camera_port: int) -> None:
    """GET /config: effective, redacted, each stream's source, the last reload."""
    view = client.get("/config").json()
    assert view["path"] == str(path) and view["last_reload"]["applied"] == result["applied"]
    assert view["config"]["restream"]["password"] == "***"
    assert view["config"]["api"]["max_body_bytes"] == 1024 * 1024  # runs until a restart
    sources = {s["id"]: s["source"] for s in view["streams"]}
    assert sources == {"a": "config", "b": "config", "r": "config", "d": "config", "x": "api"}
    shown_a = next(s for s in view["streams"] if s["id"] == "a")
    assert shown_a["definition"]["uri"] == f"rtsp://viewer:***@127.0.0.1:{camera_port}/a"
    assert shown_a["settings"]["restart_timeout"] == "1s"  # durations shown as written
    text = client.get("/config").text
    assert "s3cret" not in text and "hunter2" not in text


def check_a_broken_file_changes_nothing(svc, client: httpx.Client, path: Path,
                                        untouched: Untouched) -> None:
    path.write_text(FAST + '[[streams]]\nid = "a"\nuri = "ftp://nowhere/a"\n\n'
                    '[app]\nlog_levle = "debug"\n')
    refused = client.post("/config/reload")
    assert refused.status_code == 422
    body = refused.json()
    assert body["error"] == "invalid_config"
    assert [(i["key"], i["line"]) for i in body["issues"]] == [("streams[0].uri", 5),
                                                               ("app.log_levle", 8)]
    assert f"{path}:5: streams[0].uri" in body["detail"]
    assert {s.id for s in svc.manager.all()} == {"a", "b", "r", "d", "x"}
    assert svc.manager.get("a") is untouched.streams["a"]
    last = client.get("/config").json()["last_reload"]
    assert not last["ok"] and last["errors"][0].startswith(f"{path}:5:")


def test_reload_without_a_config_file_is_a_conflict(service_factory):
    client = service_factory().client()
    answer = client.post("/config/reload")
    assert answer.status_code == 409 and answer.json()["error"] == "no_config_file"
    view = client.get("/config").json()
    assert view["path"] is None and view["last_reload"] is None and view["streams"] == []


def test_sighup_and_the_watch_on_a_running_process(camera_factory, tmp_path):
    """`streamwarden run`: SIGHUP applies an edit, a broken file is refused in the log with
    its lines, and with `watch_config` an edit applies itself."""
    camera = camera_factory(["/a", "/b"])
    port = free_port()
    config = tmp_path / "c.toml"
    head = FAST + f'[restream]\nlisten = "127.0.0.1:{free_port()}"\n'
    one = head + stream_toml("a", camera.url("/a"))
    config.write_text(one)
    log_path = tmp_path / "stderr.log"
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamwarden", "run", "--config", str(config),
             "--listen", f"127.0.0.1:{port}"],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        client = httpx.Client(base_url=base, timeout=10)
        wait_for(lambda: _health(client).get("a", {}).get("state") == "streaming", 60,
                 interval=0.3, message="a streaming")
        retries = _health(client)["a"]["retry_count"]

        config.write_text(one + stream_toml("b", camera.url("/b")))
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: _health(client).get("b", {}).get("state") == "streaming", 30,
                 message="b added by SIGHUP")
        assert _health(client)["a"]["retry_count"] == retries

        config.write_text(one + '[app]\nlog_level = "loud"\n')
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload (signal) refused" in log_path.read_text(), 10,
                 message="the refusal in the log")
        assert f"{config}:9: app.log_level" in log_path.read_text()
        assert set(_health(client)) == {"a", "b"}

        config.write_text(one + stream_toml("b", camera.url("/b"))
                          + "[app]\nwatch_config = true\n")
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: client.get("/config").json()["config"]["app"]["watch_config"], 10,
                 message="watch_config on")
        config.write_text(one + "[app]\nwatch_config = true\n")  # b removed, no signal
        wait_for(lambda: set(_health(client)) == {"a"}, 20, message="b removed by the watch")
        assert client.get("/config").json()["last_reload"]["trigger"] == "watch"
        assert _health(client)["a"]["retry_count"] == retries
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    err = log_path.read_text()
    assert process.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]


def _health(client: httpx.Client) -> dict[str, dict]:
    try:
        response = client.get("/health")
    except httpx.HTTPError:
        return {}
    return {e["id"]: e for e in response.json()} if response.status_code == 200 else {}



@pytest.mark.skipif(not os.path.exists(MOSQUITTO), reason="mosquitto not installed")
def test_mqtt_section_added_then_changed_reconnects(service_factory, tmp_path):
    port = free_port()
    broker = Broker(tmp_path, port)
    broker.start()
    subscriber = Subscriber(port)
    path = tmp_path / "c.toml"
    path.write_text("")
    try:
        svc = service_factory(config_file=path)
        client = svc.client()
        path.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n')
        assert client.post("/config/reload").json()["applied"] == ["mqtt"]
        wait_for(lambda: subscriber.payloads("streamwarden/status") == ["online"], 10,
                 message="connected after the reload")
        path.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
                        'topic_prefix = "streamwarden/site2"\n')
        assert client.post("/config/reload").json()["applied"] == ["mqtt"]
        wait_for(lambda: subscriber.payloads("streamwarden/site2/status") == ["online"], 10,
                 message="the new connection")
        assert subscriber.payloads("streamwarden/status") == ["online", "offline"]
        assert svc.service.mqtt.config.topic_prefix == "streamwarden/site2"
    finally:
        subscriber.close()
        broker.kill()
