"""A camera's recording timeline across the nodes that held it (pure: no database).

The rules are the single node's (recording/timeline.py `build`); what changes is where the
facts come from. Segments are every node's rows of the cluster index. "The service was
running" becomes "some node held the camera" (`cluster_holds`: from a claim or transfer to
the holder's last renewal), so a failover's seconds between a dead owner's last renewal and
the claim are `service_not_running`. Each node's periods (recording requested, camera
offline) and recorder gaps count only while that node held the camera: a dead node's period
left open, or a paused node's view of a camera it had lost, explains nothing after its hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import portion

from streamwarden.recording.history import OFFLINE, RECORDING
from streamwarden.recording.timeline import Facts, Mark, Period, Segment


@dataclass(frozen=True)
class Hold:
    node_id: str
    start: float
    end: float | None  # None: held now


@dataclass(frozen=True)
class NodeFact:
    node_id: str
    source: str        # period | gap
    kind: str          # recording | offline (periods); the gap's reason (gaps)
    start: float
    end: float | None  # None: still going on


def _held(holds: Iterable[Hold], now: float) -> dict[str, portion.Interval]:
    held: dict[str, portion.Interval] = {}
    for hold in holds:
        piece = portion.closed(hold.start, now if hold.end is None else hold.end)
        held[hold.node_id] = held.get(hold.node_id, portion.empty()) | piece
    return held


def _clipped(fact: NodeFact, held: portion.Interval, now: float) -> list[tuple[float, float]]:
    """The parts of a fact within its node's holds."""
    if fact.end is not None and fact.end == fact.start:  # a moment (a discontinuity)
        return [(fact.start, fact.start)] if fact.start in held else []
    inside = portion.closed(fact.start, now if fact.end is None else fact.end) & held
    return [(piece.lower, piece.upper) for piece in inside if not piece.empty]


def cluster_facts(segments: Sequence[Segment], holds: Sequence[Hold],
                  facts: Sequence[NodeFact], now: float) -> Facts:
    held = _held(holds, now)
    wanted: list[Period] = []
    offline: list[Period] = []
    marks: list[Mark] = []
    for fact in facts:
        for start, end in _clipped(fact, held.get(fact.node_id, portion.empty()), now):
            if fact.source == "gap":
                marks.append(Mark(fact.kind, start, end))
            elif fact.kind == RECORDING:
                wanted.append(Period(start, end))
            elif fact.kind == OFFLINE:
                offline.append(Period(start, end))
    return Facts(segments=sorted(segments, key=lambda s: (s.start, s.id)),
                 runs=[Period(h.start, h.end) for h in sorted(holds, key=lambda h: h.start)],
                 wanted=wanted, offline=offline, marks=marks)
