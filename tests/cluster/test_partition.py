"""A node partitioned from the database by a real network cut (a veth pair set down between its
network namespace and the test's): the others take its cameras; it keeps recording into its
own files meanwhile; when the link returns, its index rows of the cut are refused by fencing,
it stops the cameras it no longer owns within one renewal, and its files stay on disk."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.cluster.conftest import InvariantChecker, recording_on_owner, settled, wait_until
from tests.cluster.netns import NetnsUnavailableError, create_namespace

pytestmark = pytest.mark.cluster

LEASE_S = 2.0
CUT_S = 10.0  # long enough for the others to claim and for the cut-off node to write a segment


@pytest.fixture
def namespace():
    try:
        ns = create_namespace()
    except NetnsUnavailableError as exc:
        pytest.skip(str(exc))
    try:
        yield ns
    finally:
        ns.remove()


def local_rows(node_dir: Path, stream_ids: list[str]) -> list[tuple]:
    """The node's own SQLite index: (id, stream_id, path, start_ts, status)."""
    with sqlite3.connect(f"file:{node_dir / 'index.db'}?mode=ro", uri=True, timeout=5) as db:
        marks = ",".join("?" * len(stream_ids))
        return db.execute(f"SELECT id, stream_id, path, start_ts, status FROM recordings "
                          f"WHERE stream_id IN ({marks}) ORDER BY id", stream_ids).fetchall()


def _log_time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def stop_delay(log: Path, stream_ids: list[str], cut_at: float) -> tuple[float] | None:
    """(seconds from the node's first return to the database after `cut_at` until it had
    removed all of `stream_ids`,), None while it has not."""
    lines = log.read_text(errors="replace").splitlines()
    back = [i for i, line in enumerate(lines) if "cluster database available again" in line
            and _log_time(line) >= cut_at]
    if not back:
        return None
    removed: dict[str, float] = {}
    for line in lines[back[0]:]:
        for sid in stream_ids:
            if f"stream {sid} removed" in line and sid not in removed:
                removed[sid] = _log_time(line)
    if len(removed) < len(stream_ids):
        return None
    return (max(removed.values()) - _log_time(lines[back[0]]),)


def test_partition_from_the_database(cluster, namespace, postgres):
    c = cluster(cameras_n=4, camera_host=namespace.media.host_ip)
    relay_port = namespace.relay(postgres.port)
    through_link = f"{namespace.database.host_ip}:{relay_port}"
    cut_off = c.node("n1", host=namespace.media.peer_ip, prefix=namespace.command([]),
                     database=c.setup.database.replace(f"127.0.0.1:{postgres.port}", through_link))
    for name in ("n2", "n3"):
        c.node(name)
    for node in c.nodes:
        node.wait_ready()
    ids = [sid for sid, _ in c.setup.cameras]
    with InvariantChecker(c) as checker:
        owners = settled(c, 3)
        mine = sorted(sid for sid, o in owners.items() if o == "n1")
        fences = {sid: f for sid, (_, f, _) in c.owners().items()}
        cut_at = time.time()
        namespace.database.down()
        try:
            began = time.monotonic()
            wait_until(lambda: all(c.live_owners()[sid] not in (None, "n1") for sid in mine)
                       and recording_on_owner(c, ids), 15,
                       "the cut-off node's cameras claimed and recording elsewhere")
            took = time.monotonic() - began
            # cut off, it keeps its cameras and records on (it cannot know it lost them)
            wait_until(lambda: cut_off.get("/cluster").json()["database"] == "down", 5,
                       "the cut-off node noticing")
            assert cut_off.get("/cluster").json()["running"] == mine
            time.sleep(max(0.0, CUT_S - (time.monotonic() - began)))
        finally:
            namespace.database.up()
        wait_until(lambda: cut_off.get("/cluster").json()["database"] == "up", 15,
                   "the node back on the database")
        # when it stopped them, by its own log (the new owners may offer them back to it for
        # balance at once, so a poll of what it runs can miss the moment)
        (stopped_after,) = wait_until(lambda: stop_delay(cut_off.dir / "log", mine, cut_at), 5,
                                      "the node stopping the cameras it lost")
        wait_until(lambda: cut_off.get("/cluster").json()["index_rows_rejected"] >= 1, 10,
                   "its rows of the cut refused")
        after = c.owners()
    assert checker.violations == []
    for sid in mine:
        assert after[sid][0] != "n1" and after[sid][1] > fences[sid], (sid, after[sid])

    # what it recorded while cut off: in its own index and on its disk, not in the cluster's
    rows = local_rows(cut_off.dir, mine)
    during = [r for r in rows if r[3] > cut_at + 1.0]
    assert during, "the cut-off node recorded nothing while cut off"
    for _id, _sid, path, _start, _status in rows:
        assert Path(path).is_file() and Path(path).stat().st_size > 0, path
    accepted = {int(i) for (i,) in c.sql(
        "SELECT local_id FROM cluster_recordings WHERE node_id = 'n1'")}
    assert not accepted & {r[0] for r in during}, "a row of the cut passed the fence"
    # the segments it had open at the cut were ended by the claims (it could not close them)
    assert not c.sql("SELECT local_id FROM cluster_recordings WHERE node_id = 'n1' AND "
                     "status = 'recording' AND stream_id = ANY(%s)", (mine,))
    assert took < 15
    assert stopped_after < LEASE_S / 3, stopped_after  # within one renewal interval
    print(f"claimed and recording elsewhere after {took:.1f}s; stopped {stopped_after:.2f}s "
          "after the node was back on the database")
