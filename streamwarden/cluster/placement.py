"""Which node should own which camera: rendezvous (highest random weight) hashing, weighted by
capacity, with capacity as a hard limit. Pure: every node computes the same answer from the
same list of nodes and cameras, so no node has to tell another what to do.

Rendezvous hashing moves only the cameras whose best node changed when a node joins or
leaves (about 1/N of them), and the weighted score `-weight / ln(h)` (h uniform in (0, 1))
gives each node a share proportional to its weight (Schindelhauer and Schomaker's weighted
HRW; the logarithm form is what Ceph's straw2 uses).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Weight of a node without a capacity: the same for all of them, so a cluster of unlimited
# nodes shares cameras evenly; beside limited nodes it counts as this many cameras.
UNLIMITED_WEIGHT = 64.0


@dataclass(frozen=True)
class Candidate:
    node_id: str
    capacity: int | None  # None: unlimited

    @property
    def weight(self) -> float:
        return UNLIMITED_WEIGHT if self.capacity is None else float(self.capacity)


def hash01(stream_id: str, node_id: str) -> float:
    """A stable number in (0, 1) for the pair; the same on every node and every run."""
    digest = hashlib.blake2b(f"{stream_id}\0{node_id}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 1) / (2**64 + 2)


def score(stream_id: str, node: Candidate) -> float:
    return -node.weight / math.log(hash01(stream_id, node.node_id))


def ranking(stream_id: str, nodes: Iterable[Candidate]) -> list[str]:
    """Node ids, best owner first (ties broken by id, so every node agrees)."""
    scored = sorted(((score(stream_id, n), n.node_id) for n in nodes),
                    key=lambda pair: (-pair[0], pair[1]))
    return [node_id for _, node_id in scored]


def fair_shares(count: int, nodes: Sequence[Candidate]) -> dict[str, int]:
    """Each node's share of `count` cameras by weight, adding up to `count` (largest
    remainders get the odd ones, ties by node id), never over its capacity."""
    total = sum(n.weight for n in nodes)
    if not total:
        return {n.node_id: 0 for n in nodes}
    exact = {n.node_id: count * n.weight / total for n in nodes}
    shares = {node_id: math.floor(value) for node_id, value in exact.items()}
    odd = sorted(exact, key=lambda node_id: (shares[node_id] - exact[node_id], node_id))
    for node_id in odd[:count - sum(shares.values())]:
        shares[node_id] += 1
    for node in nodes:
        if node.capacity is not None:
            shares[node.node_id] = min(shares[node.node_id], node.capacity)
    return shares


def assign(stream_ids: Iterable[str], nodes: Sequence[Candidate]) -> dict[str, str | None]:
    """The wanted owner of every camera: its best-ranked node that still has room. Rendezvous
    hashing alone is uneven for a few cameras per node (6 cameras on 3 nodes leave one node
    empty 9 % of the time), so a first pass fills each node up to its fair share by weight;
    a second places what is left within capacities. Cameras are placed in id order, so the
    answer does not depend on the order they came in; a camera no node has room for gets
    None."""
    ids = sorted(stream_ids)
    capacity = {n.node_id: n.capacity for n in nodes}
    room: dict[str, int | None] = dict(fair_shares(len(ids), nodes))
    wanted: dict[str, str | None] = {}
    for rooms in (room, capacity):
        for stream_id in ids:
            if wanted.get(stream_id) is not None:
                continue
            wanted[stream_id] = _first_with_room(stream_id, nodes, rooms)
            if (owner := wanted[stream_id]) is not None and rooms is room:
                left = capacity[owner]
                capacity[owner] = None if left is None else left - 1
    return wanted


def _first_with_room(stream_id: str, nodes: Sequence[Candidate],
                     room: dict[str, int | None]) -> str | None:
    for node_id in ranking(stream_id, nodes):
        left = room[node_id]
        if left is None or left > 0:
            if left is not None:
                room[node_id] = left - 1
            return node_id
    return None
