"""Users and roles end to end: a real service with a users file, real cameras, a real HTTP
client, WebSockets and RTSP readers (ffprobe with credentials in the URL).

Hashing is made cheap through configuration ([users] hash/min_hash), never by changing the
defaults.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.routing import BaseRoute, Mount, Route

from streamwarden.api.access import declared_actions
from streamwarden.config.model import (
    ApiSection,
    Argon2Params,
    Config,
    RestreamSection,
    SourceSettings,
    StreamConfig,
    UsersSection,
)
from streamwarden.users.passwords import HashParams, Passwords
from streamwarden.users.userfile import UserRecord, write_users
from tests.conftest import free_port, wait_for

TOKEN = "users-admin-token-0123456789abcdef"
PASSWORD = "correct horse battery"
READER_PASSWORD = "restream-reader-password"
CHEAP = Argon2Params(time_cost=1, memory_kib=8, parallelism=1)
FAST = SourceSettings(timeout=2, restart_timeout=1)
# Routes open to all: the dashboard's page and files, and what a login page needs first.
PUBLIC = {"/", "/auth/status", "/auth/login"}
# FastAPI's own description pages: behind the gate (authenticated), they hold no stream data.
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def users_file(path: Path) -> Path:
    stored = Passwords(HashParams(1, 8, 1)).hash(PASSWORD)
    write_users(path, [UserRecord("alice", "viewer", stored, ("front",)),
                       UserRecord("olga", "operator", stored),
                       UserRecord("vic", "viewer", stored)])
    return path


def users_config(tmp_path: Path, streams: list[StreamConfig], **api: object) -> Config:
    return Config(api=ApiSection(token=TOKEN, **api), stream_defaults=FAST, streams=streams,
                  users=UsersSection(file=str(users_file(tmp_path / "users.toml")),
                                     hash=CHEAP, min_hash=CHEAP, login_free_attempts=3))


def login(client: httpx.Client, name: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def secured(service_factory, camera_factory, tmp_path):
    camera = camera_factory(["/a", "/b"])
    config = users_config(tmp_path, [StreamConfig(id="front", uri=camera.url("/a")),
                                     StreamConfig(id="back", uri=camera.url("/b"))],
                          public_paths=["/health"])
    svc = service_factory(config.model_copy(update={"restream": RestreamSection(
        user="reader", password=READER_PASSWORD)}))  # the single RTSP user works beside them
    client = svc.client()
    admin = {"Authorization": f"Bearer {TOKEN}"}
    wait_for(lambda: all(client.get(f"/streams/{s}", headers=admin).json()["health"]["state"]
                         == "streaming" for s in ("front", "back")), 20, message="streams up")
    return svc, client, admin


# ---- every route declares what it needs -----------------------------------------------------

def flat_routes(routes: list[BaseRoute]) -> list[BaseRoute]:
    """Every route, with included routers opened (newer FastAPI keeps them as one entry)."""
    flat: list[BaseRoute] = []
    for route in routes:
        included = getattr(route, "original_router", None)
        flat += flat_routes(included.routes) if included is not None else [route]
    return flat


def undeclared_routes(app: FastAPI) -> list[str]:
    """Routes that declare no permission and are not public (the test of every route)."""
    missing = []
    for route in flat_routes(app.routes):
        if isinstance(route, APIRoute | APIWebSocketRoute):
            if route.path not in PUBLIC and declared_actions(route) is None:
                missing.append(route.path)
        elif isinstance(route, Mount) and route.path == "/static":
            continue
        elif not (isinstance(route, Route) and route.path in FRAMEWORK):
            missing.append(f"{route.path} (unknown kind of route)")
    return missing


def test_every_route_declares_a_permission(service_factory):
    from streamwarden.api.app import create_app

    app = create_app(service_factory(Config()).service)
    assert undeclared_routes(app) == []
    paths = {getattr(route, "path", None) for route in flat_routes(app.routes)}
    assert {"/streams", "/streams/{stream_id}/record", "/ws", "/metrics"} <= paths
    # ...and the walk notices a route that forgets
    @app.get("/forgot")
    async def forgot() -> dict:
        return {}

    assert undeclared_routes(app) == ["/forgot"]


# ---- roles ---------------------------------------------------------------------------------

def test_a_viewer_reads_and_changes_nothing(secured):
    _, client, admin = secured
    vic = login(client, "vic")
    me = client.get("/auth/me", headers=vic).json()
    assert me["role"] == "viewer" and "configure" not in me["actions"]
    assert {s["id"] for s in client.get("/streams", headers=vic).json()} == {"front", "back"}
    assert client.get("/recordings", headers=vic).status_code == 200
    assert client.get("/events", headers=vic).status_code == 200
    assert client.get("/streams/front/zones", headers=vic).json() == {"zones": [], "masks": []}
    refused = [
        client.post("/streams", headers=vic, json={"id": "new", "uri": "rtsp://127.0.0.1:9/x"}),
        client.delete("/streams/front", headers=vic),
        client.patch("/streams/front", headers=vic, json={"enable_recording": True}),
        client.patch("/streams/front", headers=vic, json={"uri": "rtsp://127.0.0.1:9/y"}),
        client.post("/streams/front/record", headers=vic),
        client.delete("/streams/front/record", headers=vic),
        client.get("/metrics", headers=vic),
        client.put("/streams/front/zones", headers=vic, json={"zones": [], "masks": []}),
    ]
    for response in refused:
        assert response.status_code == 403, (response.request.url, response.text)
        assert response.json() == {"error": "forbidden",
                                   "detail": "this account is not allowed to do that"}
    # the 403 comes before the body's fields or the stream are looked at
    assert client.post("/streams", headers=vic, json={"id": "no such id!"}).status_code == 403
    assert client.post("/streams/nope/record", headers=vic).status_code == 403
    assert [s["id"] for s in client.get("/streams", headers=admin).json()] == ["front", "back"]
    assert not client.get("/streams/front", headers=admin).json()["recording"]


def test_an_operator_records_but_does_not_configure(secured):
    _, client, admin = secured
    olga = login(client, "olga")
    started = client.post("/streams/front/record", headers=olga)
    assert started.status_code == 200 and started.json()["recording"] is True
    assert client.delete("/streams/front/record", headers=olga).json()["recording"] is False
    toggled = client.patch("/streams/back", headers=olga, json={"enable_recording": True})
    assert toggled.status_code == 200 and toggled.json()["enable_recording"] is True
    assert client.get("/metrics", headers=olga).status_code == 200
    for response in (
        client.post("/streams", headers=olga, json={"id": "new", "uri": "rtsp://127.0.0.1:9/x"}),
        client.delete("/streams/back", headers=olga),
        client.patch("/streams/back", headers=olga, json={"uri": "rtsp://127.0.0.1:9/y"}),
        client.patch("/streams/back", headers=olga,
                     json={"enable_recording": False, "timeout": "9s"}),
        client.patch("/streams/back", headers=olga, json={"record_on": ["person"]}),
        client.put("/streams/back/zones", headers=olga, json={"zones": [], "masks": []}),
    ):
        assert response.status_code == 403, response.request.url
    stream = client.get("/streams/back", headers=admin).json()
    assert stream["enable_recording"] is True and stream["settings"]["timeout"] == "2s"
    assert client.patch("/streams/back", headers=admin,
                        json={"enable_recording": False}).status_code == 200


# ---- per-stream lists ------------------------------------------------------------------------

def not_found(client: httpx.Client, path: str, headers: dict[str, str]) -> dict:
    response = client.get(path, headers=headers)
    assert response.status_code == 404, (path, response.text)
    return response.json()


def test_a_stream_list_holds_for_the_api(secured):
    _, client, admin = secured
    alice = login(client, "alice")
    assert [s["id"] for s in client.get("/streams", headers=alice).json()] == ["front"]
    assert [h["id"] for h in client.get("/health", headers=alice).json()] == ["front"]
    assert len(client.get("/health").json()) == 2  # public, no credentials: the operator's choice
    # another user's stream answers exactly like a stream that does not exist
    hidden, unknown = (not_found(client, f"/streams/{s}", alice) for s in ("back", "nope"))
    assert hidden == {"error": "not_found", "detail": "no stream with id 'back'"}
    assert unknown == {"error": "not_found", "detail": "no stream with id 'nope'"}
    assert client.put("/streams/back/zones", headers=admin,
                      json={"zones": [], "masks": []}).status_code == 200, "an admin may"
    for path in ("/streams/back/snapshot.jpg", "/streams/back/zones",
                 "/recordings?stream_id=back",
                 "/events?stream_id=back", "/streams/back/clip?start=2024-01-01T00:00:00&"
                 "end=2024-01-01T00:01:00"):
        assert not_found(client, path, alice)["error"] == "not_found"
    # recordings of the hidden stream are not listed, nor served
    assert client.post("/streams/back/record", headers=admin).status_code == 200
    segment = wait_for(lambda: client.get("/recordings?stream_id=back", headers=admin).json(),
                       10, message="a segment of back")[0]
    client.delete("/streams/back/record", headers=admin)
    assert client.get("/recordings", headers=alice).json() == []
    assert not_found(client, segment["url"], alice) == {
        "error": "not_found", "detail": f"no recording with id {segment['id']}"}


def test_a_stream_list_holds_for_websocket_messages(secured):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    svc, client, admin = secured
    alice = login(client, "alice")
    ws_url = f"ws://127.0.0.1:{svc.port}"

    def signed(path: str, headers: dict[str, str]) -> str:
        issued = client.post("/auth/url-token", json={"path": path}, headers=headers)
        assert issued.status_code == 200, issued.text
        return issued.json()["url"]

    with connect(ws_url + signed("/ws", alice)) as ws:
        snapshot = json.loads(ws.recv(timeout=5))
        assert [s["id"] for s in snapshot["streams"]] == ["front"]
        for stream in ("back", "front"):  # back's message comes first, and must not arrive
            assert client.post(f"/streams/{stream}/record", headers=admin).status_code == 200
        seen = []
        while not any(m.get("stream_id") == "front" and m["type"] == "recording" for m in seen):
            seen.append(json.loads(ws.recv(timeout=10)))
        assert all(m.get("stream_id") in (None, "front") for m in seen), seen
        assert all({s["id"] for s in m.get("streams", [{"id": "front"}])} == {"front"}
                   for m in seen)
    for stream in ("back", "front"):
        client.delete(f"/streams/{stream}/record", headers=admin)

    # the live view of another user's stream is refused like an unknown stream's
    with connect(ws_url + signed("/streams/back/live.mp4", alice)) as ws:
        assert json.loads(ws.recv(timeout=5)) == {"type": "error", "error": "not_found",
                                                  "detail": "no stream with id 'back'"}
    # a URL token ends with its session
    url = signed("/ws", alice)
    assert client.post("/auth/logout", headers=alice).status_code == 204
    with pytest.raises(InvalidStatus) as refused, connect(ws_url + url):
        pass
    assert refused.value.response.status_code == 401
    assert client.get("/streams", headers=alice).status_code == 401


# ---- RTSP readers ------------------------------------------------------------------------------

def rtsp_answer(url: str) -> str:
    """What ffprobe got from the restream: "ok", or the server's refusal ("401", "404")."""
    result = subprocess.run(["ffprobe", "-v", "error", "-rtsp_transport", "tcp",
                             "-show_entries", "stream=codec_name", "-of", "json", url],
                            capture_output=True, text=True, timeout=30)
    if result.returncode == 0:
        return "ok" if json.loads(result.stdout)["streams"] else "empty"
    for code in ("401", "404", "503"):
        if f"{code} " in result.stderr:
            return code
    return result.stderr.strip()[-200:]


def test_a_stream_list_holds_for_rtsp_readers(secured):
    svc, _, _ = secured
    base = f"127.0.0.1:{svc.rtsp_port}"
    assert rtsp_answer(f"rtsp://alice:{PASSWORD}@{base}/front") == "ok"
    assert rtsp_answer(f"rtsp://alice:{PASSWORD}@{base}/back") == "404"  # as if unknown
    assert rtsp_answer(f"rtsp://alice:{PASSWORD}@{base}/nope") == "404"
    assert rtsp_answer(f"rtsp://olga:{PASSWORD}@{base}/back") == "ok"
    assert rtsp_answer(f"rtsp://alice:wrong-password@{base}/front") == "401"
    assert rtsp_answer(f"rtsp://nobody:{PASSWORD}@{base}/front") == "401"
    assert rtsp_answer(f"rtsp://{base}/front") == "401"
    assert rtsp_answer(f"rtsp://reader:{READER_PASSWORD}@{base}/back") == "ok"
    assert rtsp_answer(f"rtsp://reader:{PASSWORD}@{base}/back") == "401"


# ---- brute force and bad input -----------------------------------------------------------------

def test_wrong_passwords_are_slowed_per_address(secured):
    svc, client, _ = secured

    def attempt(name: str, password: str, client: httpx.Client = client) -> httpx.Response:
        return client.post("/auth/login", json={"username": name, "password": password})

    wrong = [attempt("alice", "wrong password"), attempt("nobody", PASSWORD),
             attempt("alice", "wrong again")]
    assert [r.status_code for r in wrong] == [401] * 3
    assert wrong[0].json() == wrong[1].json() == {  # unknown user and wrong password alike
        "error": "unauthorized", "detail": "wrong user name or password"}
    assert attempt("alice", "fourth wrong").status_code == 401  # then this address waits 1 s
    slowed = attempt("alice", PASSWORD)  # even the right password waits
    assert slowed.status_code == 429 and slowed.json()["error"] == "too_many_attempts"
    assert slowed.headers["Retry-After"] == "1"
    other = httpx.Client(base_url=svc.base_url, timeout=10,
                         transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    assert attempt("alice", PASSWORD, other).status_code == 200  # another address is not
    time.sleep(1.1)
    assert attempt("alice", PASSWORD).status_code == 200


@pytest.mark.parametrize("command", ["run", "check-config"])
def test_a_weak_or_malformed_hash_stops_start_up_naming_the_user(tmp_path, command):
    users = tmp_path / "users.toml"
    good = Passwords(HashParams(1, 8, 1)).hash(PASSWORD)
    users.write_text(
        '[users.carol]\nrole = "viewer"\npassword_hash = "hunter2hunter2"\n'
        '[users.dave]\nrole = "viewer"\n'
        'password_hash = "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"\n'
        '[users.erin]\nrole = "operator"\npassword_hash = "$argon2id$v=19$m=8,t=1,p=1$abc"\n'
        f'[users.frank]\nrole = "viewer"\npassword_hash = "{good}"\n')
    config = tmp_path / "c.toml"
    config.write_text(f'[api]\nlisten = "127.0.0.1:{free_port()}"\n[app]\n'
                      f'database = "{tmp_path / "db.sqlite"}"\n[users]\nfile = "{users}"\n')
    args = ["run", "--config", str(config)] if command == "run" else ["check-config",
                                                                        str(config)]
    result = subprocess.run([sys.executable, "-m", "streamwarden", *args], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
    assert "user 'carol': password_hash is not a password hash" in result.stderr
    assert "user 'dave': password_hash uses the scheme $2b$" in result.stderr
    assert "user 'erin': password_hash is a malformed argon2" in result.stderr
    assert "user 'frank': password_hash is weaker (m=8 KiB, t=1, p=1) than [users] min_hash" \
        in result.stderr  # well-formed argon2id, but below the default minimum
    assert not (tmp_path / "db.sqlite").exists()  # nothing was touched
