"""The node's decision step from a database snapshot: claims, starts, stops, planned moves."""

from __future__ import annotations

from streamwarden.cluster.decide import LeaseRow, Local, NodeRow, Snapshot, decide, wanted_owners

NODES = [NodeRow("a", None, True, False), NodeRow("b", None, True, False)]


def lease(sid, owner=None, fence=0, expired=None, stale=False, **kw) -> LeaseRow:
    return LeaseRow(sid, owner, fence, owner is None if expired is None else expired, stale,
                    **kw)


def orphans(n=4) -> list[LeaseRow]:
    return [lease(f"c{i}") for i in range(n)]


def test_each_node_claims_only_the_orphans_placed_on_it():
    leases = orphans()
    wanted = wanted_owners(Snapshot("a", NODES, leases))
    for me in ("a", "b"):
        steps = decide(Snapshot(me, NODES, leases), Local())
        assert steps.claim == sorted(s for s, o in wanted.items() if o == me)
    assert set(wanted.values()) == {"a", "b"}


def test_a_stale_orphan_is_taken_by_anyone_with_room():
    leases = [lease("c0", "dead", 3, expired=True, stale=True)]
    nodes = [*NODES, NodeRow("dead", None, False, False)]
    assert decide(Snapshot("a", nodes, leases), Local()).claim == ["c0"]
    assert decide(Snapshot("a", nodes, leases), Local(capacity=1, running=frozenset())).claim \
        == ["c0"]
    full = [*leases, lease("c1", "a", 1, expired=False)]
    assert decide(Snapshot("a", nodes, full), Local(capacity=1)).claim == []


def test_no_claims_of_expired_leases_while_the_database_is_just_back():
    nodes = [NodeRow("a", None, True, False), NodeRow("b", None, False, False)]
    leases = [lease(f"c{i}", "b", 1, expired=True) for i in range(4)]
    assert decide(Snapshot("a", nodes, leases, claims_open=False), Local()).claim == []
    assert decide(Snapshot("a", nodes, leases, claims_open=True), Local()).claim != []


def test_owned_streams_start_and_lost_ones_stop():
    leases = [lease("c0", "a", 1, expired=False), lease("c1", "b", 2, expired=False)]
    steps = decide(Snapshot("a", NODES, leases), Local(running=frozenset({"c1", "gone"})))
    assert steps.start == ["c0"]
    assert steps.stop == ["c1", "gone"]  # taken by b (a paused node's view), deleted


def test_planned_move_is_make_before_break():
    both = [lease("c0", "a", 5, expired=False), lease("c1", "a", 5, expired=False)]
    wanted = wanted_owners(Snapshot("a", NODES, both))
    sid = next(s for s, o in wanted.items() if o == "b")
    other = next(s for s, o in wanted.items() if o == "a")
    running = frozenset({"c0", "c1"})
    # the owner offers the camera placed on b, within its budget, and only within it
    assert decide(Snapshot("a", NODES, both), Local(running, moves_allowed=1)).offer == [
        (sid, "b")]
    assert decide(Snapshot("a", NODES, both), Local(running, moves_allowed=0)).offer == []

    def offered(**kw) -> list[LeaseRow]:
        return [lease(other, "a", 5, expired=False),
                lease(sid, "a", 5, expired=False, handoff_to="b", **kw)]

    mine = frozenset({sid})
    # the target starts it beside the owner, then says it is ready once it records
    assert decide(Snapshot("b", NODES, offered(handoff_age=1.0)), Local()).warm == [sid]
    assert decide(Snapshot("b", NODES, offered(handoff_age=1.0)),
                  Local(mine, fit=mine)).ready == [sid]
    steps = decide(Snapshot("b", NODES, offered(handoff_age=1.0)), Local(mine))
    assert steps.ready == [] and steps.stop == []  # warming: kept, not ready yet
    # the owner keeps it until then, and gives it over once the target is ready
    assert decide(Snapshot("a", NODES, offered(handoff_age=1.0)), Local(running)).transfer \
        == []
    assert decide(Snapshot("a", NODES, offered(ready=True, handoff_age=3.0)),
                  Local(running)).transfer == [(sid, "b")]
    assert decide(Snapshot("a", NODES, offered(handoff_age=99.0)),
                  Local(running)).transfer == [(sid, "b")]
    gone = [NodeRow("a", None, True, False), NodeRow("b", None, False, False)]
    assert decide(Snapshot("a", gone, offered()), Local(running)).cancel == [sid]


def test_draining_offers_everything_and_takes_nothing():
    mine = [lease(f"c{i}", "a", 1, expired=False) for i in range(3)]
    nodes = [NodeRow("a", None, True, True), NodeRow("b", None, True, False)]
    running = frozenset(m.stream_id for m in mine)
    steps = decide(Snapshot("a", nodes, [*mine, lease("c9")]),
                   Local(running, draining=True, moves_allowed=0))
    assert steps.offer == [(m.stream_id, "b") for m in mine]
    assert steps.claim == []


def test_a_node_just_started_claims_nothing_yet():
    assert decide(Snapshot("a", NODES, orphans()), Local(settling=True)).claim == []
