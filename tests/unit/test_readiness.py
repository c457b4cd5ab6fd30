"""Readiness as a plain state: when `GET /health/ready` says yes, and why it says no."""

from __future__ import annotations

from streamwarden.readiness import Readiness


def test_not_ready_before_start_up_has_finished():
    verdict = Readiness().check({}, database_ok=True)
    assert not verdict.ready and "starting" in verdict.reason


def test_ready_only_once_every_start_up_stream_was_attempted():
    readiness = Readiness()
    readiness.starting_with(["a", "b"])
    verdict = readiness.check({"a": "starting", "b": "streaming"}, database_ok=True)
    assert not verdict.ready and verdict.reason.endswith("stream(s) a")
    verdict = readiness.check({"a": "retrying", "b": "streaming"}, database_ok=True)
    assert verdict.ready and "2 stream(s)" in verdict.reason


def test_a_failed_first_attempt_counts_as_attempted():
    readiness = Readiness()
    readiness.starting_with(["down"])
    assert readiness.check({"down": "failed"}, database_ok=True).ready


def test_readiness_is_latched_streams_added_later_do_not_unready():
    readiness = Readiness()
    readiness.starting_with(["a"])
    assert readiness.check({"a": "streaming"}, database_ok=True).ready
    # a new stream connecting, or "a" reconnecting, leaves a running service in rotation
    assert readiness.check({"a": "starting", "new": "starting"}, database_ok=True).ready


def test_a_stream_removed_before_its_first_attempt_is_not_waited_for():
    readiness = Readiness()
    readiness.starting_with(["gone", "b"])
    assert readiness.check({"b": "streaming"}, database_ok=True).ready


def test_database_and_shutdown_take_readiness_away():
    readiness = Readiness()
    readiness.starting_with([])
    assert readiness.check({}, database_ok=True).ready
    verdict = readiness.check({}, database_ok=False)
    assert not verdict.ready and "database" in verdict.reason
    readiness.stopping = True
    verdict = readiness.check({}, database_ok=True)
    assert not verdict.ready and "shutting down" in verdict.reason


def test_a_long_wait_list_is_shortened():
    readiness = Readiness()
    ids = [f"cam{i:02d}" for i in range(8)]
    readiness.starting_with(ids)
    verdict = readiness.check(dict.fromkeys(ids, "starting"), database_ok=True)
    assert "cam00, cam01, cam02, cam03, cam04 and 3 more" in verdict.reason
