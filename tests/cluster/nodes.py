"""Service processes for the cluster tests: `python -m streamwarden run -c node.toml`, each with
its own port, SQLite index, recordings directory, and the cluster's shared database and key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import REPO, free_port


@dataclass
class ClusterSetup:
    database: str
    workdir: Path
    lease: str = "2s"
    segment: str = "4s"
    cameras: list[tuple[str, str]] = field(default_factory=list)  # (id, rtsp url)
    record: bool = True
    moves_per_minute: int = 6
    clustered: bool = True  # False: the same node without [cluster] (the benchmark's baseline)


@dataclass
class Node:
    node_id: str
    setup: ClusterSetup
    capacity: int | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    host: str = "127.0.0.1"          # where its API listens (and how others reach it)
    database: str | None = None      # its own way to the cluster's database, if not the setup's
    prefix: list[str] = field(default_factory=list)  # e.g. `ip netns exec NAME`

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def dir(self) -> Path:
        return self.setup.workdir / self.node_id

    def config_text(self) -> str:
        setup = self.setup
        lines = [
            "[app]", f'database = "{self.dir / "index.db"}"',
            f'secret_key_file = "{setup.workdir / "cluster.key"}"', "",
            "[api]", f'listen = "{self.host}:{self.port}"',
            # a veth address of the partition test (private to this machine), not loopback
            *(["allow_unauthenticated = true"] if self.host != "127.0.0.1" else []), "",
            "[restream]", "enabled = false", "",
            "[recording]", f'base_path = "{self.dir / "recordings"}"',
            f'segment_duration = "{setup.segment}"', "",
        ]
        if setup.clustered:
            lines += [
                "[cluster]", f'database = "{self.database or setup.database}"',
                f'node_id = "{self.node_id}"',
                f'lease = "{setup.lease}"', "drain_timeout = \"12s\"",
                f"moves_per_minute = {setup.moves_per_minute}",
                *([f"capacity = {self.capacity}"] if self.capacity else []), ""]
        for stream_id, uri in setup.cameras:
            lines += ["[[streams]]", f'id = "{stream_id}"', f'uri = "{uri}"',
                      f"enable_recording = {json.dumps(setup.record)}", 'timeout = "3s"',
                      'restart_timeout = "1s"', ""]
        return "\n".join(lines)

    def start(self) -> Node:
        self.dir.mkdir(parents=True, exist_ok=True)
        config = self.dir / "node.toml"
        config.write_text(self.config_text())
        log = open(self.dir / "log", "ab")  # noqa: SIM115 (the process keeps it)
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "streamwarden", "run", "-c", str(config)],
            cwd=REPO,
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        log.close()
        return self

    def wait_ready(self, timeout: float = 60.0) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"node {self.node_id} exited: {self.log_tail()}")
            try:
                path = "/cluster" if self.setup.clustered else "/health"
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"node {self.node_id} did not start: {self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.dir / "log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=kwargs.pop("timeout", 5), **kwargs)

    def held(self) -> dict[str, int]:
        return self.get("/cluster").json()["held"]
