"""Access control: bearer token, signed URL tokens, public paths, exposure refusal, body cap."""

from __future__ import annotations

import inspect
import ssl
import subprocess
import sys
import time

import httpx
import pytest

from streamwarden.api.access import UNAUTHORIZED_DETAIL
from streamwarden.config.model import ApiSection, Config
from streamwarden.users import gate, sessions
from tests.conftest import free_port

TOKEN = "s3cret-token-for-tests-0123456789"
PROTECTED = [("GET", "/streams"), ("POST", "/streams"), ("GET", "/streams/x"),
             ("DELETE", "/streams/x"), ("PATCH", "/streams/x"), ("POST", "/streams/x/record"),
             ("DELETE", "/streams/x/record"), ("GET", "/recordings"),
             ("GET", "/recordings/1/file"), ("GET", "/streams/x/clip"), ("GET", "/docs"),
             ("GET", "/openapi.json"), ("POST", "/auth/url-token"), ("GET", "/auth/me"),
             ("POST", "/auth/logout"), ("GET", "/events"), ("GET", "/inference"),
             ("GET", "/streams/x/snapshot.jpg")]


@pytest.fixture
def secured(service_factory):
    return service_factory(Config(api=ApiSection(token=TOKEN)))


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": "Bearer"}])
def test_every_protected_route_needs_the_token(secured, headers):
    client = secured.client()
    for method, path in PROTECTED:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json() == {"error": "unauthorized", "detail": UNAUTHORIZED_DETAIL}


def test_token_opens_and_public_paths_stay_open(secured):
    client = secured.client()
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/streams", headers=good).status_code == 200
    assert client.get("/openapi.json", headers=good).status_code == 200
    assert client.get("/health").status_code == 200


def test_signed_url_tokens(secured):
    client = secured.client()
    good = {"Authorization": f"Bearer {TOKEN}"}
    issued = client.post("/auth/url-token", json={"path": "/streams", "ttl": "2s"},
                         headers=good).json()
    assert client.get(issued["url"]).status_code == 200
    assert client.get(f"/recordings?access_token={issued['token']}").status_code == 401
    tampered = issued["token"][:-2] + ("AA" if not issued["token"].endswith("AA") else "BB")
    assert client.get(f"/streams?access_token={tampered}").status_code == 401
    expired = f"{int(time.time()) - 1}.{issued['token'].split('.', 1)[1]}"
    assert client.get(f"/streams?access_token={expired}").status_code == 401
    forged = sessions.UrlSigner(TOKEN.encode()).sign("/streams", sessions.TOKEN_SID,
                                                    time.time() + 60)
    assert client.get(f"/streams?access_token={forged}").status_code == 401
    assert client.get("/streams?access_token=garbage").status_code == 401
    time.sleep(2.2)
    assert client.get(issued["url"]).status_code == 401


def test_comparisons_are_constant_time():
    assert "hmac.compare_digest" in inspect.getsource(gate.Gate.from_header)
    assert "hmac.compare_digest" in inspect.getsource(sessions.UrlSigner.check)


def test_body_size_is_capped(service_factory):
    client = service_factory(Config(api=ApiSection(max_body_bytes=2048))).client()
    big = b'{"id": "a", "uri": "rtsp://127.0.0.1:9/' + b"x" * 5000 + b'"}'
    response = client.post("/streams", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"] == "too_large"
    # chunked: no Content-Length, so the cap trips while the body is being read
    chunked = client.post("/streams", content=iter([big[:1500], big[1500:]]),
                          headers={"content-type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413
    assert chunked.json() == {"error": "too_large", "detail": "request body over 2048 bytes"}
    assert client.get("/streams").json() == []


def test_non_loopback_without_token_refuses_to_start(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "streamwarden", "run", "--listen", f"0.0.0.0:{port}"],
        capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr and "Traceback" not in result.stderr


def test_token_from_environment(tmp_path):
    port = free_port()
    env = {"STREAMWARDEN_API_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamwarden", "run", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, env=env)
    try:
        url = f"http://127.0.0.1:{port}/streams"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                response = httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert response.status_code == 401
        ok = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
        assert ok.status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_websocket_needs_a_token_and_accepts_a_signed_one(secured):
    import json

    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{secured.port}/ws"
    with pytest.raises(InvalidStatus) as refused, connect(url) as ws:
        ws.recv(timeout=5)
    response = refused.value.response  # the handshake's answer, in the API's shape
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    assert json.loads(response.body) == {"error": "unauthorized",
                                         "detail": UNAUTHORIZED_DETAIL}
    issued = secured.client().post("/auth/url-token", json={"path": "/ws"},
                                   headers={"Authorization": f"Bearer {TOKEN}"}).json()
    with connect(f"{url}?access_token={issued['token']}") as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "snapshot"


def test_tls(service_factory, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(f'[api]\nlisten = "127.0.0.1:{port}"\ntls_cert = "{cert}"\n'
                      f'tls_key = "{key}"\n')
    process = subprocess.Popen([sys.executable, "-m", "streamwarden", "run", "--config",
                                str(config)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                context = ssl.create_default_context(cafile=str(cert))
                response = httpx.get(f"https://127.0.0.1:{port}/health", verify=context,
                                     timeout=2)
                break
            except httpx.ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert response.status_code == 200 and response.json() == []
    finally:
        process.terminate()
        process.wait(10)
