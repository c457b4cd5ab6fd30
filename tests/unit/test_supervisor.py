"""The reconnect rules on their own, driven by a fake clock (no GStreamer, no network)."""

from __future__ import annotations

import itertools

from streamwarden.config.model import SourceSettings
from streamwarden.ingest.supervisor import Action, RetryReason, SourceSupervisor, StreamState

SETTINGS = SourceSettings(timeout=5, restart_timeout=3, retry_timeout=60,
                          failed_retry_interval=30)


def run_until(sup: SourceSupervisor, start: float, end: float, step: float = 0.25):
    """Tick from start to end; return [(time, action)] for every non-trivial action."""
    actions = []
    t = start
    while t <= end:
        action = sup.tick(t)
        if action is not Action.NONE:
            actions.append((t, action))
        t = round(t + step, 6)
    return actions


def test_never_answering_source_times_out_and_retries_every_restart_timeout():
    sup = SourceSupervisor(SETTINGS, now=0)
    actions = run_until(sup, 0, 20)
    # timeout after 5 s, pause 3 s, new attempt, timeout 5 s later, ...
    assert [a for _, a in actions[:4]] == [Action.TEARDOWN, Action.START] * 2
    assert 5 < actions[0][0] <= 5.25 and abs(actions[1][0] - actions[0][0] - 3) < 0.3
    assert sup.state is StreamState.RETRYING
    assert sup.last_retry_reason is RetryReason.TIMEOUT and sup.retry_count >= 2


def test_streaming_stall_detected_after_timeout():
    sup = SourceSupervisor(SETTINGS, now=0)
    sup.on_data(1)
    assert sup.state is StreamState.STREAMING
    sup.on_data(10)
    assert sup.tick(14.9) is Action.NONE
    assert sup.tick(15.1) is Action.TEARDOWN
    assert sup.state is StreamState.RETRYING and sup.retry_count == 1


def test_error_then_recovery_within_restart_timeout():
    sup = SourceSupervisor(SETTINGS, now=0)
    sup.on_data(0.5)
    assert sup.on_problem(2, RetryReason.ERROR, "connection refused") is Action.TEARDOWN
    assert sup.tick(4.9) is Action.NONE
    assert sup.tick(5.0) is Action.START
    sup.on_data(5.4)
    assert sup.state is StreamState.STREAMING and sup.last_error == "connection refused"
    transitions = [(t.old, t.new) for t in sup.pop_transitions()]
    assert transitions == [
        (StreamState.STARTING, StreamState.STREAMING),
        (StreamState.STREAMING, StreamState.RETRYING),
        (StreamState.RETRYING, StreamState.STREAMING),
    ]


def test_failed_after_retry_timeout_then_slow_backoff_and_recovery():
    sup = SourceSupervisor(SETTINGS, now=0)
    sup.on_data(0)
    t = 1.0
    sup.on_problem(t, RetryReason.EOS)
    starts = []
    while t < 400:
        t += 0.25
        action = sup.tick(t)
        if action is Action.START:
            starts.append(t)
            sup.on_problem(t + 0.01, RetryReason.ERROR, "refused")
    assert sup.state is StreamState.FAILED
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    before_failed = [g for s, g in zip(starts, gaps, strict=False) if s < 60]
    assert all(abs(g - 3) < 0.3 for g in before_failed)  # every restart_timeout while retrying
    assert max(gaps) <= 30.3 and gaps[-1] > 29  # then doubling up to failed_retry_interval
    assert sup.last_retry_reason is RetryReason.ERROR
    # a camera that returns is picked up by the next attempt
    while sup.tick(t) is not Action.START:
        t += 0.25
    sup.on_data(t + 0.5)
    assert sup.state is StreamState.STREAMING and sup.unhealthy_for(t + 1) == 0


def test_problem_reports_from_a_finished_attempt_are_ignored():
    sup = SourceSupervisor(SETTINGS, now=0)
    sup.on_problem(1, RetryReason.ERROR)
    assert sup.on_problem(1.1, RetryReason.ERROR) is Action.NONE
    sup.on_data(1.2)  # late data from the torn-down attempt does not count
    assert sup.retry_count == 1 and sup.state is StreamState.RETRYING


def test_unhealthy_duration_counts_from_the_start_for_a_never_seen_camera():
    sup = SourceSupervisor(SETTINGS, now=100)
    run_until(sup, 100, 160)
    assert sup.unhealthy_for(160) == 60
    assert sup.state is StreamState.FAILED
