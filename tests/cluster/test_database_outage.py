"""PostgreSQL down for 30 s, then back: no camera drops, nobody reshuffles, the index catches
up with what was recorded meanwhile."""

from __future__ import annotations

import time

import pytest

from tests.cluster.conftest import InvariantChecker, coverage_holes, settled, wait_until

pytestmark = pytest.mark.cluster

OUTAGE_S = 30.0


def test_database_down_for_30s(cluster):
    c = cluster(cameras_n=4)
    c.start_nodes("n1", "n2", "n3")
    with InvariantChecker(c) as checker:
        settled(c, 3)
        before = c.owners()
        running = {n.node_id: n.get("/cluster").json()["running"] for n in c.nodes}
        began = time.time()
        c.postgres.stop("fast")
        try:
            deadline = time.monotonic() + OUTAGE_S
            while time.monotonic() < deadline:  # every node keeps its cameras meanwhile
                for node in c.nodes:
                    state = node.get("/cluster").json()
                    assert state["running"] == running[node.node_id], node.node_id
                time.sleep(2.0)
            assert all(n.get("/cluster").json()["database"] == "down" for n in c.nodes)
        finally:
            c.postgres.start()
        back = time.time()
        wait_until(lambda: all(n.get("/cluster").json()["database"] == "up" for n in c.nodes),
                   15, "every node back on the database")
        time.sleep(3 * 2.0)  # a few renewals: a reshuffle would show now
        after = c.owners()
        assert {sid: o for sid, (o, _, _) in after.items()} == {
            sid: o for sid, (o, _, _) in before.items()}, "owners changed"
        # a node whose lease ran out during the outage may claim its own camera again on
        # return (a higher fence, the same owner, the camera never stopped); never lower
        assert all(after[sid][1] >= before[sid][1] for sid in before), (before, after)
        assert all(live for _, _, live in after.values())
        for node in c.nodes:
            assert node.get("/cluster").json()["running"] == running[node.node_id]
        # the segments recorded while the database was away reach the cluster index
        for sid in before:
            wait_until(lambda sid=sid: coverage_holes(c, sid, began, back) == [], 15,
                       f"{sid}'s footage of the outage indexed")
    assert checker.violations == []
