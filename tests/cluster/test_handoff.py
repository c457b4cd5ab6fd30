"""Planned and unplanned changes of owner: a paused node that comes back, a node stopped with
SIGTERM (handoff without a gap), a node joining (a bounded number of moves)."""

from __future__ import annotations

import signal
import time

import pytest

from tests.cluster.conftest import (
    InvariantChecker,
    coverage_holes,
    settled,
    spread_over,
    wait_until,
)
from tests.cluster.test_failover import iso

pytestmark = pytest.mark.cluster


def test_sigstop_past_the_lease_then_sigcont(cluster):
    c = cluster(cameras_n=4)
    c.start_nodes("n1", "n2", "n3")
    with InvariantChecker(c) as checker:
        owners = settled(c, 3)
        frozen = next(n for n in c.nodes if n.node_id == owners["c0"])
        mine = sorted(sid for sid, o in owners.items() if o == frozen.node_id)
        frozen.signal(signal.SIGSTOP)
        wait_until(lambda: all(c.live_owners()[sid] not in (None, frozen.node_id)
                               for sid in mine), 15, "the paused node's cameras claimed")
        frozen.signal(signal.SIGCONT)
        thawed = time.monotonic()
        wait_until(lambda: frozen.get("/cluster").json()["running"] == [], 5,
                   "the thawed node stopping its cameras", interval=0.05)
        stopped_after = time.monotonic() - thawed
        # its closing segment rows carried the old fence: refused by the cluster index
        wait_until(lambda: frozen.get("/cluster").json()["index_rows_rejected"] >= 1, 10,
                   "the late index rows refused")
        assert frozen.get("/cluster").json()["held"] == {}
    assert checker.violations == []
    lease = 2.0
    assert stopped_after < lease / 3 + 1.5, stopped_after  # one renewal, plus HTTP polling


def test_sigterm_hands_off_without_a_gap(cluster):
    c = cluster(cameras_n=4)
    c.start_nodes("n1", "n2", "n3")
    with InvariantChecker(c) as checker:
        owners = settled(c, 3)
        leaving = next(n for n in c.nodes if n.node_id == owners["c1"])
        moved = sorted(sid for sid, o in owners.items() if o == leaving.node_id)
        time.sleep(2.0)  # some footage on the leaving node first
        began = time.time()
        assert leaving.terminate(30) == 0
        took = time.time() - began
        after = c.live_owners()
        assert all(after[sid] not in (None, leaving.node_id) for sid in moved), after
        time.sleep(2.0)
        end = time.time()
    assert checker.violations == []
    for sid in moved:
        assert coverage_holes(c, sid, began - 2.0, end) == [], sid
        # the cluster's timeline, from any node, shows the move as one span over both nodes
        window = {"start": iso(began - 2.0), "end": iso(end)}
        timeline = c.nodes[0 if c.nodes[0] is not leaving else 1].get(
            f"/streams/{sid}/timeline", params=window).json()
        assert timeline["gaps"] == [], (sid, timeline)
        ids = [seg["id"] for span in timeline["spans"] for seg in span["segments"]]
        nodes = {n for (n,) in c.sql("SELECT node_id FROM cluster_recordings WHERE id = ANY(%s)",
                                     (ids,))}
        assert nodes == {leaving.node_id, after[sid]}, (sid, nodes)
    assert took < 15, took


def test_join_takes_a_share_with_bounded_moves(cluster):
    c = cluster(cameras_n=6, moves_per_minute=1)
    c.node("n1", capacity=3)  # full: the first node up cannot take all six, so the start
    c.node("n2", capacity=3)  # itself needs no moves, and the budget is whole for the join
    for node in c.nodes:
        node.wait_ready()
    with InvariantChecker(c) as checker:
        before = settled(c, 2)
        fences = {sid: f for sid, (_, f, _) in c.owners().items()}
        joined = time.time()
        c.node("n3", capacity=3).wait_ready()
        wait_until(lambda: spread_over(c, 3), 30, "the new node taking cameras")
        time.sleep(3 * 2.0)  # a few more renewals: no further moves within the budget
        after = c.owners()
        end = time.time()
    moved = [sid for sid in before if after[sid][0] != before[sid]]
    # one move per minute per node: at most one from each of the two old nodes
    assert 1 <= len(moved) <= 2, moved
    assert all(after[sid][0] == "n3" for sid in moved)
    assert all(after[sid][1] == fences[sid] + 1 for sid in moved)
    assert checker.violations == []
    for sid in moved:
        assert coverage_holes(c, sid, joined, end) == [], sid
