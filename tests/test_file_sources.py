"""`file://` sources: anything from the config file, only allowed directories from the API."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamwarden.config.model import (
    ApiSection,
    AppSection,
    Config,
    RecordingSection,
    SourceSettings,
    StreamConfig,
)
from streamwarden.file_sources import file_source_problem
from tests.conftest import free_port


@pytest.fixture
def tree(tmp_path) -> dict[str, Path]:
    """clips/ (allowed) with a file, a symlink escaping to secret/, and one staying inside."""
    clips, secret = tmp_path / "clips", tmp_path / "secret"
    clips.mkdir()
    secret.mkdir()
    (clips / "a.mp4").write_bytes(b"clip")
    (secret / "key").write_bytes(b"secret")
    (clips / "escape.mp4").symlink_to(secret / "key")
    (clips / "alias.mp4").symlink_to(clips / "a.mp4")
    (clips / "outside-dir").symlink_to(secret, target_is_directory=True)
    return {"clips": clips, "secret": secret}


def test_policy_follows_symlinks_and_dots(tree):
    clips, secret = tree["clips"], tree["secret"]
    allowed = [str(clips)]
    for inside in (clips / "a.mp4", clips / "alias.mp4", clips / "not-yet-there.mp4"):
        assert file_source_problem(inside.as_uri(), allowed) is None, inside
    assert file_source_problem(f"file://localhost{clips}/a.mp4", allowed) is None
    refused = [
        (secret / "key").as_uri(),
        f"file://{clips}/../secret/key",
        f"file://{clips}/%2e%2e/secret/key",  # GStreamer decodes escapes: so do we
        f"file://{clips}/..%2Fsecret%2Fkey",
        (clips / "escape.mp4").as_uri(),
        f"file://{clips}/outside-dir/key",
        f"file://{clips}/a.mp4?x=1",
        f"file://{clips}/a.mp4%00.txt",
        f"file://{clips}x/a.mp4",  # a sibling whose name starts the same is not inside
    ]
    for uri in refused:
        assert file_source_problem(uri, allowed), uri
    assert "config file" in file_source_problem((clips / "a.mp4").as_uri(), [])
    assert file_source_problem("rtsp://h/x", []) is None


def config_with_dirs(tmp_path: Path, dirs: list[str], streams=()) -> Config:
    return Config(app=AppSection(database=str(tmp_path / "state.db")),
                  api=ApiSection(allowed_file_dirs=dirs),
                  recording=RecordingSection(base_path=str(tmp_path / "rec")),
                  stream_defaults=SourceSettings(timeout=1, restart_timeout=1),
                  streams=list(streams))


def test_api_file_sources_only_inside_allowed_dirs(service_factory, tree, tmp_path):
    clips, secret = tree["clips"], tree["secret"]
    in_config = StreamConfig(id="cfg", uri=(secret / "key").as_uri())  # the operator's choice
    svc = service_factory(config_with_dirs(tmp_path, [str(clips)], [in_config]))
    client = svc.client()
    assert client.get("/streams/cfg").json()["source"] == "config"

    for n, uri in enumerate([(secret / "key").as_uri(), f"file://{clips}/../secret/key",
                             f"file://{clips}/%2e%2e/secret/key", (clips / "escape.mp4").as_uri()]):
        response = client.post("/streams", json={"id": f"bad{n}", "uri": uri})
        assert response.status_code == 403, (uri, response.text)
        body = response.json()
        assert set(body) == {"error", "detail"} and body["error"] == "file_source_not_allowed"
        assert str(secret) not in body["detail"]  # where a symlink leads is not told
        assert client.get(f"/streams/bad{n}").status_code == 404
    inside = (clips / "a.mp4").as_uri()
    assert client.post("/streams", json={"id": "clip", "uri": inside}).status_code == 201
    assert client.get("/streams/clip").json()["uri"] == inside

    rtsp = f"rtsp://127.0.0.1:{free_port()}/x"
    assert client.post("/streams", json={"id": "cam", "uri": rtsp}).status_code == 201
    refused = client.patch("/streams/cam", json={"uri": (clips / "escape.mp4").as_uri()})
    assert refused.status_code == 403 and refused.json()["error"] == "file_source_not_allowed"
    assert client.get("/streams/cam").json()["uri"] == rtsp
    refused = client.patch("/streams/cfg", json={"uri": f"file://{secret}/other"})
    assert refused.status_code == 403  # a config stream does not lend the API its freedom
    kept = client.patch("/streams/cfg", json={"uri": (secret / "key").as_uri(),
                                              "enable_recording": False})
    assert kept.status_code == 200  # its own unchanged URI is not the client's choice
    assert client.patch("/streams/cam", json={"uri": inside}).status_code == 200
    svc.stop()

    # the list is checked again at start-up: without the directory, stored streams stay off
    svc = service_factory(config_with_dirs(tmp_path, []))
    assert {s["id"] for s in svc.client().get("/streams").json()} == set()
    svc.stop()
    svc = service_factory(config_with_dirs(tmp_path, [str(clips)]))
    assert {s["id"] for s in svc.client().get("/streams").json()} == {"clip", "cam"}
