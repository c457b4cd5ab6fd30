"""A camera's timeline across nodes (cluster/timeline.py) on hand-made rows: holds are the
cluster's "service running", each node's facts count only while it held the camera."""

from __future__ import annotations

from streamwarden.cluster.timeline import Hold, NodeFact, cluster_facts
from streamwarden.recording.timeline import Segment, build


def reasons(timeline) -> list[tuple[float, float, str]]:
    return [(round(g.start, 3), round(g.end, 3), g.reason) for g in timeline.gaps]


def test_a_planned_move_is_one_span():
    segments = [Segment(1, 0.0, 10.2), Segment(2, 9.5, None, "recording")]
    holds = [Hold("a", 0.0, 10.0), Hold("b", 10.0, None)]
    facts = [NodeFact("a", "period", "recording", 0.0, 10.1),
             NodeFact("b", "period", "recording", 9.0, None)]
    timeline = build(cluster_facts(segments, holds, facts, now=20.0), 0.0, 20.0, 20.0)
    assert [(s.start, s.end, [seg.id for seg in s.segments]) for s in timeline.spans] == [
        (0.0, 20.0, [1, 2])]
    assert timeline.gaps == ()


def test_a_failover_is_service_not_running_and_the_dead_node_explains_nothing_after():
    # a dies at 10 (its segment interrupted there, its periods left open); b claims at 13,
    # streams from 14
    segments = [Segment(1, 0.0, 10.0, "interrupted"), Segment(2, 14.0, None, "recording")]
    holds = [Hold("a", 0.0, 10.0), Hold("b", 13.0, None)]
    facts = [NodeFact("a", "period", "recording", 0.0, None),
             NodeFact("a", "period", "offline", 9.9, None),
             NodeFact("a", "gap", "disk_full", 9.95, None),
             NodeFact("b", "period", "recording", 13.0, None),
             NodeFact("b", "period", "offline", 13.0, 14.0)]
    facts_in = cluster_facts(segments, holds, facts, now=30.0)
    # a's open facts end with its hold
    assert max(p.end for p in facts_in.offline if p.start < 10.0) == 10.0
    assert [(m.reason, m.start, m.end) for m in facts_in.marks] == [("disk_full", 9.95, 10.0)]
    timeline = build(facts_in, 0.0, 30.0, 30.0)
    assert [(s.start, s.end) for s in timeline.spans] == [(0.0, 10.0), (14.0, 30.0)]
    assert reasons(timeline) == [(10.0, 13.0, "service_not_running"),
                                 (13.0, 14.0, "camera_offline")]


def test_facts_of_a_node_that_never_held_the_camera_are_ignored():
    holds = [Hold("a", 0.0, None)]
    facts = [NodeFact("a", "period", "recording", 0.0, None),
             NodeFact("b", "period", "offline", 0.0, None),  # a paused node's stale view
             NodeFact("a", "gap", "discontinuity", 5.0, 5.0),
             NodeFact("b", "gap", "discontinuity", 6.0, 6.0)]
    built = cluster_facts([Segment(1, 0.0, 4.0), Segment(2, 5.0, None, "recording")], holds,
                          facts, now=10.0)
    assert built.offline == []
    assert [(m.reason, m.start) for m in built.marks] == [("discontinuity", 5.0)]
    timeline = build(built, 0.0, 10.0, 10.0)
    assert reasons(timeline) == [(4.0, 5.0, "discontinuity")]
