"""Secrets at rest: private file modes, credentials from the environment, encrypted API streams.

All against the real service and real SQLite files; "not readable" is checked on the raw bytes
of the database, its WAL and shared-memory files, the way someone with a copy would look.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from streamwarden.config.loader import parse_config
from streamwarden.config.model import AppSection, Config, RecordingSection, StreamConfig
from streamwarden.db import Database
from streamwarden.gst.init import Gst
from streamwarden.secret_key import SecretKeyError
from streamwarden.service import Service
from tests.conftest import REPO, free_port, state_of, wait_for
from tests.media import recorded_files


@pytest.fixture
def usual_umask():
    """The common 022 umask (files 0644 unless the service says otherwise), then restored."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def config_in(tmp_path: Path, streams=(), **recording) -> Config:
    return Config(app=AppSection(database=str(tmp_path / "data" / "state.db")),
                  recording=RecordingSection(base_path=str(tmp_path / "rec"), **recording),
                  streams=list(streams))


def database_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "data").glob("state.db*"))


def on_disk(tmp_path: Path, secret: str) -> list[Path]:
    """Database files (db, -wal, -shm, key) whose raw bytes contain `secret`."""
    return [p for p in database_files(tmp_path) if secret.encode() in p.read_bytes()]


def stored_rows(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "data" / "state.db") as conn:
        return conn.execute("SELECT id, config FROM streams ORDER BY id").fetchall()


def rtsp_credentials(svc, stream_id: str) -> tuple[str | None, str | None]:
    """user-id and user-pw of the rtspsrc the stream's source made: what the camera gets."""
    def read() -> tuple[str | None, str | None]:
        iterator = svc.manager.get(stream_id).pipeline.iterate_recurse()
        while True:
            result, element = iterator.next()
            if result != Gst.IteratorResult.OK:
                return None, None
            factory = element.get_factory()
            if factory is not None and factory.get_name() == "rtspsrc":
                return element.get_property("user-id"), element.get_property("user-pw")

    return svc.service.loop.call(read)


def streaming(client: httpx.Client, stream_id: str) -> bool:
    return state_of(client, stream_id)["health"]["state"] == "streaming"


@pytest.mark.parametrize(
    ("recording", "file_mode", "dir_mode"),
    [({}, 0o600, 0o700), ({"file_mode": "0640", "dir_mode": "0750"}, 0o640, 0o750)],
)
def test_created_files_are_private(service_factory, camera_factory, tmp_path, usual_umask,
                                   recording, file_mode, dir_mode):
    camera = camera_factory(["/cam"])
    stream = StreamConfig(id="cam", uri=camera.url(), enable_recording=True)
    svc = service_factory(config_in(tmp_path, [stream], **recording))
    rec = tmp_path / "rec"
    [segment, *_] = wait_for(lambda: recorded_files(rec, "cam"), 15, message="a segment")
    wait_for(lambda: segment.stat().st_size > 0, 10, message="data in the segment")
    assert mode(segment) == file_mode
    assert mode(segment.parent) == mode(rec / "cam") == mode(rec) == dir_mode
    db = tmp_path / "data" / "state.db"
    names = {p.name: mode(p) for p in database_files(tmp_path)}
    assert names == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600,
                     "state.db.key": 0o600}
    assert mode(db.parent) == 0o700
    svc.stop()


def test_older_world_readable_database_is_tightened(tmp_path, usual_umask):
    path = tmp_path / "old.db"
    older = sqlite3.connect(path)  # as an older version left it, still open: WAL and SHM exist
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("CREATE TABLE t (x)")
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert [mode(p) for p in files] == [0o644] * 3
    db = Database(path)
    try:
        assert [mode(p) for p in files] == [0o600] * 3
    finally:
        db.close()
        older.close()


def test_service_process_runs_with_a_private_umask(tmp_path):
    port = free_port()
    config = tmp_path / "sw.toml"
    config.write_text(f'[app]\ndatabase = "{tmp_path}/state.db"\n[api]\nlisten = '
                      f'"127.0.0.1:{port}"\n[restream]\nenabled = false\n')
    process = subprocess.Popen(
        ["sh", "-c", f'umask 022 && exec "{sys.executable}" -m streamwarden run -c "{config}"'],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/health"), 30, message="the service")
        status = Path(f"/proc/{process.pid}/status").read_text()
        umask = next(line.split()[1] for line in status.splitlines() if line.startswith("Umask"))
        assert int(umask, 8) == 0o077
        assert mode(tmp_path / "state.db") == mode(tmp_path / "state.db.key") == 0o600
    finally:
        process.terminate()
        process.wait(15)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_env_credentials_reach_the_camera_and_nowhere_else(service_factory, camera_factory,
                                                           tmp_path, monkeypatch, caplog):
    camera = camera_factory(["/cam"])
    secret = "Env-Only-7f3a9c"
    monkeypatch.setenv("SW_TEST_CAM_PASSWORD", secret)
    path = tmp_path / "cams.toml"
    path.write_text(f'[app]\ndatabase = "{tmp_path}/data/state.db"\n\n[[streams]]\nid = "cam"\n'
                    f'uri = "rtsp://admin:${{SW_TEST_CAM_PASSWORD}}@127.0.0.1:{camera.port}/cam"'
                    "\n")
    config = parse_config(path.read_text(), str(path))
    with caplog.at_level("DEBUG"):
        svc = service_factory(config)
        client = svc.client()
        wait_for(lambda: streaming(client, "cam"), 15, message="streaming")
        assert rtsp_credentials(svc, "cam") == ("admin", secret)
        view = client.get("/streams/cam").json()
        assert view["uri"] == f"rtsp://admin:***@127.0.0.1:{camera.port}/cam"
        for route in ("/streams", "/streams/cam", "/health", "/metrics"):
            assert secret not in client.get(route).text, route
        svc.stop()
    assert secret not in caplog.text and "admin:***@" in caplog.text
    assert not on_disk(tmp_path, secret)  # config streams are never stored

    result = subprocess.run([sys.executable, "-m", "streamwarden", "check-config", str(path)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "SW_TEST_CAM_PASSWORD": secret})
    assert result.returncode == 0 and "OK (1 stream(s))" in result.stdout
    assert secret not in result.stdout + result.stderr


def test_missing_env_variable_is_a_config_error_with_its_line(tmp_path):
    path = tmp_path / "cams.toml"
    path.write_text('[[streams]]\nid = "cam"\n\nuri = "rtsp://admin:${SW_TEST_UNSET}@h/x"\n')
    env = {k: v for k, v in os.environ.items() if k != "SW_TEST_UNSET"}
    result = subprocess.run([sys.executable, "-m", "streamwarden", "check-config", str(path)],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert (f"{path}:4: streams[0].uri: environment variable SW_TEST_UNSET is not set"
            in result.stderr)
    assert "1 problem(s) found" in result.stderr and "Traceback" not in result.stderr


def test_api_credentials_are_encrypted_at_rest_and_survive_restart(service_factory,
                                                                   camera_factory, tmp_path):
    camera = camera_factory(["/cam"])
    secret = "Api-Stored-91be44"
    uri = f"rtsp://admin:{secret}@127.0.0.1:{camera.port}/cam"
    svc = service_factory(config_in(tmp_path))
    client = svc.client()
    assert client.post("/streams", json={"id": "cam", "uri": uri}).status_code == 201
    assert client.patch("/streams/cam", json={"timeout": "4s"}).status_code == 200
    assert not on_disk(tmp_path, secret) and not on_disk(tmp_path, f":{camera.port}/cam")
    svc.stop()
    assert not on_disk(tmp_path, secret)
    [(stream_id, stored)] = stored_rows(tmp_path)
    assert stream_id == "cam" and stored.startswith("fernet:")

    svc = service_factory(config_in(tmp_path))
    client = svc.client()
    wait_for(lambda: streaming(client, "cam"), 15, message="the stored stream streaming")
    assert rtsp_credentials(svc, "cam") == ("admin", secret)
    view = client.get("/streams/cam").json()
    assert view["source"] == "api" and view["settings"]["timeout"] == "4s"
    assert secret not in client.get("/streams").text


def test_plain_rows_of_an_older_version_load_and_are_encrypted(service_factory, camera_factory,
                                                               tmp_path):
    camera = camera_factory(["/cam"])
    secret = "Was-Plain-5d21e0"
    old = StreamConfig(id="old", uri=f"rtsp://admin:{secret}@127.0.0.1:{camera.port}/cam")
    (tmp_path / "data").mkdir()
    db = Database(tmp_path / "data" / "state.db")  # what an older version wrote: plain JSON
    db.call(db.save_stream, old.id, old.model_dump_json())
    db.close()
    assert on_disk(tmp_path, secret)  # readable before: the check below can fail

    svc = service_factory(config_in(tmp_path))
    client = svc.client()
    wait_for(lambda: streaming(client, "old"), 15, message="the old row streaming")
    assert rtsp_credentials(svc, "old") == ("admin", secret)
    assert not on_disk(tmp_path, secret)  # rewritten, old text zeroed, WAL emptied
    svc.stop()
    assert not on_disk(tmp_path, secret)
    assert stored_rows(tmp_path)[0][1].startswith("fernet:")


def test_missing_or_wrong_key_stops_start_up_and_keeps_the_rows(service_factory, tmp_path):
    dead = f"rtsp://admin:pw@127.0.0.1:{free_port()}/x"
    config = config_in(tmp_path)
    svc = service_factory(config)
    client = svc.client()
    for stream_id in ("one", "two"):
        assert client.post("/streams", json={"id": stream_id, "uri": dead}).status_code == 201
    svc.stop()
    key = tmp_path / "data" / "state.db.key"
    saved = key.read_bytes()
    key.unlink()
    rows = stored_rows(tmp_path)

    toml = tmp_path / "sw.toml"
    toml.write_text(f'[app]\ndatabase = "{tmp_path}/data/state.db"\n[api]\n'
                    f'listen = "127.0.0.1:{free_port()}"\n[restream]\nenabled = false\n')
    result = subprocess.run([sys.executable, "-m", "streamwarden", "run", "-c", str(toml)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert f"the secret key file {key} is missing" in result.stderr
    assert "2 encrypted stream(s)" in result.stderr and "Traceback" not in result.stderr
    assert stored_rows(tmp_path) == rows and not key.exists()  # nothing lost, no new key

    key.write_bytes(Fernet.generate_key())  # someone else's key: refused the same way
    with pytest.raises(SecretKeyError, match="cannot decrypt stream"):
        Service(config)
    assert stored_rows(tmp_path) == rows

    key.write_bytes(saved)
    svc = service_factory(config)
    assert {s["id"] for s in svc.client().get("/streams").json()} == {"one", "two"}


def test_key_file_that_cannot_be_created_is_a_clear_error(tmp_path):
    not_a_dir = tmp_path / "plain-file"
    not_a_dir.write_text("")  # root may write anywhere, but not under a file
    config = config_in(tmp_path).model_copy(update={"app": AppSection(
        database=str(tmp_path / "data" / "state.db"), secret_key_file=str(not_a_dir / "x.key"))})
    with pytest.raises(SecretKeyError, match=r"cannot create the secret key file .*writable"):
        Service(config)
