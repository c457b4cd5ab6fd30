"""Placement (weighted rendezvous hashing with fair shares) and the move budget: plain data."""

from __future__ import annotations

from collections import Counter

from streamwarden.cluster.budget import MoveBudget
from streamwarden.cluster.placement import Candidate, assign, hash01, ranking

IDS = [f"cam{i}" for i in range(120)]
THREE = [Candidate(f"n{i}", None) for i in range(3)]


def test_same_answer_whatever_the_order():
    assert assign(IDS, THREE) == assign(reversed(IDS), list(reversed(THREE)))
    assert 0 < hash01("cam1", "n1") < 1
    assert ranking("cam1", THREE) == ranking("cam1", list(reversed(THREE)))


def test_even_spread_even_for_a_few_cameras():
    assert Counter(assign([f"c{i}" for i in range(6)], THREE).values()) == {
        "n0": 2, "n1": 2, "n2": 2}
    assert Counter(assign(IDS, THREE).values()) == {"n0": 40, "n1": 40, "n2": 40}


def test_shares_follow_capacity_and_never_exceed_it():
    nodes = [Candidate("small", 10), Candidate("big", 30)]
    assert Counter(assign([f"x{i}" for i in range(40)], nodes).values()) == {
        "small": 10, "big": 30}
    over = assign([f"x{i}" for i in range(50)], nodes)
    assert Counter(over.values()) == {"small": 10, "big": 30, None: 10}


def test_a_joining_node_takes_about_its_share_only():
    before = assign(IDS, THREE)
    after = assign(IDS, [*THREE, Candidate("n3", None)])
    moved = [i for i in IDS if before[i] != after[i]]
    assert all(after[i] == "n3" or before[i] != after[i] for i in moved)
    assert 30 <= len(moved) <= 36  # the ideal is 30 (a quarter)


def test_a_leaving_node_moves_its_cameras_and_hardly_any_other():
    before = assign(IDS, THREE)
    after = assign(IDS, THREE[:2])
    survivors_moved = [i for i in IDS if before[i] != "n2" and before[i] != after[i]]
    assert all(after[i] in ("n0", "n1") for i in IDS)
    assert len(survivors_moved) <= 3


def test_move_budget_refills_per_minute():
    budget = MoveBudget(6)
    assert budget.available(0.0) == 6
    budget.spend(0.0, 6)
    assert budget.available(0.0) == 0
    assert budget.available(9.9) == 0
    assert budget.available(10.0) == 1
    assert budget.available(600.0) == 6  # never more than a minute's worth
