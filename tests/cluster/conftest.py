"""The cluster tests' fixtures: one throw-away PostgreSQL per session, a database per test,
camera processes and service processes (nodes), all stopped by finalizers."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from cryptography.fernet import Fernet

from tests.cluster.nodes import ClusterSetup, Node
from tests.cluster.postgres import Postgres, postgres_bin, remove_postgres, start_postgres
from tests.conftest import CameraProcess, free_port

CAMERA_OPTIONS = ["--width", "320", "--height", "180", "--fps", "10", "--gop", "10",
                  "--bitrate", "200"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    if postgres_bin() is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh installs it)")
    server = start_postgres(free_port())
    try:
        yield server
    finally:
        remove_postgres(server)


@dataclass
class Cluster:
    setup: ClusterSetup
    postgres: Postgres
    nodes: list[Node] = field(default_factory=list)

    def node(self, node_id: str, capacity: int | None = None, **where) -> Node:
        node = Node(node_id, self.setup, capacity, **where)
        self.nodes.append(node)
        return node.start()

    def start_nodes(self, *node_ids: str) -> list[Node]:
        """Start the nodes together (so their first placement is one), then wait for each."""
        started = [self.node(node_id) for node_id in node_ids]
        for node in started:
            node.wait_ready()
        return started

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.setup.database, autocommit=True, connect_timeout=3) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def owners(self) -> dict[str, tuple[str | None, int, bool]]:
        """stream -> (owner, fence, lease live)."""
        return {sid: (owner, fence, live) for sid, owner, fence, live in self.sql(
            "SELECT stream_id, owner, fence, expires > now() FROM ownership")}

    def live_owners(self) -> dict[str, str | None]:
        return {sid: (owner if live else None)
                for sid, (owner, _, live) in self.owners().items()}


@pytest.fixture
def cluster(postgres: Postgres, tmp_path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []
    cameras: list[CameraProcess] = []
    name = f"t{uuid.uuid4().hex[:10]}"

    def make(cameras_n: int = 4, camera_host: str = "127.0.0.1", **options) -> Cluster:
        paths = [f"/c{i}" for i in range(cameras_n)]
        camera = CameraProcess(free_port(), paths, [*CAMERA_OPTIONS, "--host", camera_host])
        cameras.append(camera.start())
        key = tmp_path / "cluster.key"  # the key every node shares (made before they start)
        key.touch(mode=0o600)
        key.write_bytes(Fernet.generate_key())
        setup = ClusterSetup(postgres.create_database(name), tmp_path,
                             cameras=[(p.strip("/"), f"rtsp://{camera_host}:{camera.port}{p}")
                                      for p in paths], **options)
        made.append(Cluster(setup, postgres))
        return made[-1]

    yield make
    for c in made:
        for node in c.nodes:
            node.kill()
    for camera in cameras:
        camera.kill()
    if postgres.running():
        postgres.drop_database(name)


class InvariantChecker:
    """Polls the database while a test runs: never two live owners for a camera (one row per
    camera makes that structural; what is checked is what can break): a camera's fence never
    goes down, a new owner always comes with a higher fence, and no two nodes say they hold
    the same camera under the same fence."""

    def __init__(self, cluster: Cluster, interval: float = 0.2):
        self.cluster = cluster
        self.interval = interval
        self.samples = 0
        self.violations: list[str] = []
        self.last: dict[str, tuple[str | None, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="invariants", daemon=True)

    def __enter__(self) -> InvariantChecker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                owners = self.cluster.owners()
            except psycopg.Error:
                continue  # the database is down on purpose in some tests
            self._check_db(owners)
            self._check_nodes(owners)
            self.samples += 1

    def _check_db(self, owners: dict[str, tuple[str | None, int, bool]]) -> None:
        for sid, (owner, fence, _live) in owners.items():
            before = self.last.get(sid)
            if before is not None:
                old_owner, old_fence = before
                if fence < old_fence:
                    self.violations.append(f"{sid}: fence went down {old_fence} -> {fence}")
                if owner is not None and owner != old_owner and fence == old_fence:
                    self.violations.append(f"{sid}: owner {old_owner} -> {owner} with the "
                                           f"same fence {fence}")
            self.last[sid] = (owner, fence)

    def _check_nodes(self, owners: dict[str, tuple[str | None, int, bool]]) -> None:
        holders: dict[tuple[str, int], list[str]] = {}
        for node in self.cluster.nodes:
            if not node.alive():
                continue
            try:
                held = node.held()
            except Exception:
                continue  # stopped, starting, frozen
            for sid, fence in held.items():
                holders.setdefault((sid, fence), []).append(node.node_id)
        for (sid, fence), names in holders.items():
            if len(names) > 1:
                self.violations.append(f"{sid}: fence {fence} held by {names}")


def wait_until(predicate: Callable[[], object], timeout: float, message: str,
               interval: float = 0.2) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except Exception:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def recording_on_owner(cluster, stream_ids) -> bool:
    """Every camera is streaming and writing a segment on the node that owns it."""
    owners = cluster.live_owners()
    by_id = {n.node_id: n for n in cluster.nodes}
    for sid in stream_ids:
        owner = owners.get(sid)
        if owner is None or not by_id[owner].alive():
            return False
        view = by_id[owner].get(f"/streams/{sid}").json()
        segments = sum(c.get("segments") or 0 for c in view["statistics"]["consumers"])
        if view["owner"] != owner or view["health"]["state"] != "streaming" or not segments:
            return False
    return True


def spread_over(cluster, nodes: int) -> dict[str, int] | None:
    counts: dict[str, int] = {}
    for owner in cluster.live_owners().values():
        if owner is not None:
            counts[owner] = counts.get(owner, 0) + 1
    return counts if len(counts) == nodes else None


def settled(c: Cluster, nodes: int, timeout: float = 60.0) -> dict[str, str | None]:
    """Wait until the cameras are spread over `nodes` nodes and all record; the owners."""
    ids = [sid for sid, _ in c.setup.cameras]
    wait_until(lambda: spread_over(c, nodes) and recording_on_owner(c, ids) and quiet(c),
               timeout, f"cameras spread over {nodes} nodes, all recording, no move pending")
    return c.live_owners()


def quiet(c: Cluster) -> bool:
    """No planned move in progress, and every live node runs exactly what it holds."""
    if c.sql("SELECT 1 FROM ownership WHERE handoff_to IS NOT NULL"):
        return False
    for node in c.nodes:
        if node.alive():
            state = node.get("/cluster").json()
            if sorted(state["held"]) != state["running"]:
                return False
    return True


def coverage_holes(c: Cluster, stream_id: str, start: float, end: float,
                   tolerance: float = 1.5) -> list[tuple[float, float]]:
    """Stretches of [start, end] no indexed segment of the cluster covers (an open
    segment counts up to now on a live node, up to its last heartbeat on a dead one), longer
    than `tolerance` (a keyframe interval and the clock's slack)."""
    rows = c.sql("SELECT r.start_ts, COALESCE(r.end_ts, extract(epoch FROM CASE WHEN n.expires > "
                 "now() THEN now() ELSE n.heartbeat END)::float8) "
                 "FROM cluster_recordings r JOIN cluster_nodes n USING (node_id) "
                 "WHERE r.stream_id = %s AND r.status <> 'corrupt' ORDER BY r.start_ts",
                 (stream_id,))
    holes, covered = [], start
    for seg_start, seg_end in rows:
        if seg_end < covered:
            continue
        if seg_start - covered > tolerance:
            holes.append((covered, seg_start))
        covered = max(covered, seg_end)
        if covered >= end:
            break
    if end - covered > tolerance:
        holes.append((covered, end))
    return holes
