"""One step of a node's loop, decided from what the database said (pure, no I/O).

The database is the only judge of time for leases (`expired`, `stale`, `handoff_age` are
computed with its `now()`), so nodes whose clocks disagree still agree on who owns what. The
runtime (node.py) takes the database snapshot after renewing its own leases, calls `decide`,
and carries the steps out; every claim it makes is still an atomic UPDATE that one node wins.

Planned moves are make-before-break: the owner offers the camera (`handoff_to`), the target
starts it beside the owner and says `ready` once it streams (and records, if it should), the
owner then stops its copy (closing its segment), publishes its index rows under its own fence
and gives the camera over with the fence incremented. Both record the seconds in between, so
a move loses no footage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from streamwarden.cluster.placement import Candidate, assign


@dataclass(frozen=True)
class NodeRow:
    node_id: str
    capacity: int | None
    alive: bool     # its heartbeat lease has not ended (database clock)
    leaving: bool   # draining for a shutdown: takes nothing new
    url: str = ""


@dataclass(frozen=True)
class LeaseRow:
    stream_id: str
    owner: str | None
    fence: int
    expired: bool                 # the owner's lease ended (or nobody owns it)
    stale: bool                   # ...and over one lease ago: its wanted node did not take it
    handoff_to: str | None = None
    ready: bool = False
    handoff_age: float | None = None  # seconds since the offer


@dataclass(frozen=True)
class Snapshot:
    me: str
    nodes: Sequence[NodeRow]
    leases: Sequence[LeaseRow]
    claims_open: bool = True  # False for one lease after the database restarted


@dataclass(frozen=True)
class Local:
    running: frozenset[str] = frozenset()  # streams running in this node's manager
    fit: frozenset[str] = frozenset()      # ...of which streaming (and recording if asked)
    capacity: int | None = None
    draining: bool = False
    settling: bool = False                 # just started: claims nothing yet (see node.py)
    moves_allowed: int = 0                 # from the move budget (draining: unlimited)
    handoff_timeout: float = 30.0          # a target that is never ready gets it anyway


@dataclass
class Steps:
    claim: list[str] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    warm: list[str] = field(default_factory=list)
    ready: list[str] = field(default_factory=list)
    offer: list[tuple[str, str]] = field(default_factory=list)
    transfer: list[tuple[str, str]] = field(default_factory=list)
    cancel: list[str] = field(default_factory=list)


def wanted_owners(snapshot: Snapshot) -> dict[str, str | None]:
    """Where every camera should be: placement over the live nodes that are not leaving."""
    candidates = [Candidate(n.node_id, n.capacity) for n in snapshot.nodes
                  if n.alive and not n.leaving]
    return assign([lease.stream_id for lease in snapshot.leases], candidates)


def decide(snapshot: Snapshot, local: Local) -> Steps:
    me = snapshot.me
    steps = Steps()
    wanted = wanted_owners(snapshot)
    alive = {n.node_id for n in snapshot.nodes if n.alive}
    mine = [lease for lease in snapshot.leases if lease.owner == me]
    load = len(mine) + sum(1 for lease in snapshot.leases
                           if lease.owner != me and lease.handoff_to == me)
    moves = len(mine) if local.draining else local.moves_allowed
    for lease in mine:
        moves -= _owned(lease, wanted.get(lease.stream_id), alive, local, steps, moves > 0)
    for lease in snapshot.leases:
        if lease.owner == me:
            continue
        if lease.handoff_to == me and not lease.expired and not local.draining:
            _target(lease, local, steps)
        elif (not local.draining and not local.settling
              and _claimable(lease, snapshot.claims_open)
              and (wanted.get(lease.stream_id) == me or lease.stale)
              and (local.capacity is None or load < local.capacity)):
            steps.claim.append(lease.stream_id)
            load += 1
    kept = {lease.stream_id for lease in snapshot.leases
            if lease.owner == me or (lease.handoff_to == me and lease.stream_id in local.running
                                     and not lease.expired and not local.draining)}
    steps.stop = sorted((local.running - kept) - set(steps.claim))
    return steps


def _owned(lease: LeaseRow, wanted: str | None, alive: set[str], local: Local,
           steps: Steps, may_move: bool) -> int:
    """A camera this node owns: run it, move it on, or finish a move. Returns moves spent."""
    sid = lease.stream_id
    if sid not in local.running:
        steps.start.append(sid)
    target = lease.handoff_to
    if target is not None:
        if target not in alive:
            steps.cancel.append(sid)
        elif lease.ready or (lease.handoff_age or 0.0) > local.handoff_timeout:
            steps.transfer.append((sid, target))
        return 0
    if wanted is not None and wanted != lease.owner and may_move and sid in local.running:
        steps.offer.append((sid, wanted))
        return 1
    return 0


def _target(lease: LeaseRow, local: Local, steps: Steps) -> None:
    """A camera offered to this node: start it beside the owner, then say when it is fit."""
    if lease.stream_id not in local.running:
        steps.warm.append(lease.stream_id)
    elif lease.stream_id in local.fit and not lease.ready:
        steps.ready.append(lease.stream_id)


def _claimable(lease: LeaseRow, claims_open: bool) -> bool:
    """Nobody owns it, or its owner's lease ended (not while the database is just back: the
    owners alive get one lease to renew, so a restart reshuffles nothing)."""
    return lease.owner is None or (lease.expired and claims_open)
