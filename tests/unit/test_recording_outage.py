"""Outage rules with a fake clock, and the gaps table on a real SQLite file (no GStreamer)."""

from __future__ import annotations

import pytest

from streamwarden.db import Database
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.outage import (
    HEARTBEAT_S,
    MAX_RETRY_S,
    RESUME_FLOOR_BYTES,
    RETRY_S,
    Gap,
    OutageTracker,
    resume_threshold,
)

T0 = 1_800_000_000.0  # a fake wall clock


def test_one_outage_through_many_failed_retries():
    tracker = OutageTracker()
    assert tracker.error is None
    change = tracker.failed("disk_full", last_recorded=T0 - 0.5, now=T0, session_start=T0 - 30)
    assert change is not None and (change.error, change.previous) == ("disk_full", None)
    assert change.started.start == T0 - 0.5 and change.started.session_start == T0 - 30
    for second in range(1, 20):  # every retry fails again: nothing more to report
        assert tracker.failed("disk_full", T0 + second, T0 + second) is None
        assert tracker.error == "disk_full"
    change = tracker.resumed(first_frame=T0 + 25)
    assert (change.error, change.previous) == (None, "disk_full")
    assert change.ended == Gap("disk_full", T0 - 0.5, T0 + 25, T0 - 30)
    assert change.ended.seconds == 25.5
    assert tracker.error is None and tracker.resumed(T0 + 26) is None


def test_lost_seconds_count_only_what_the_buffer_cannot_bring_back_and_never_go_down():
    tracker = OutageTracker()
    tracker.failed("disk_full", T0, T0)
    readings = []
    # The pre-event buffer still holds the outage's first frame for a while: nothing is lost
    # yet. Then its oldest frame moves on, then a resumed session pins where it begins.
    for resumable_from in (T0, T0, T0 + 2, T0 + 7, T0 + 7):
        readings.append(tracker.lost_seconds(resumable_from)["disk_full"])
    tracker.resumed(first_frame=T0 + 7)
    readings.append(tracker.lost_seconds(T0 + 100)["disk_full"])  # closed: the input is moot
    tracker.add_lost("disk_full", 0.4)  # the index found the cut file ends earlier
    readings.append(tracker.lost_seconds(T0 + 100)["disk_full"])
    assert readings == [0.0, 0.0, 2.0, 7.0, 7.0, 7.0, pytest.approx(7.4)]
    tracker.add_lost("disk_full", -3)  # never down
    assert tracker.lost_seconds(T0)["disk_full"] == pytest.approx(7.4)


def test_losses_add_up_by_reason():
    tracker = OutageTracker()
    tracker.failed("disk_full", T0, T0)
    tracker.resumed(T0 + 3)
    tracker.failed("write_error", T0 + 10, T0 + 10)
    tracker.resumed(T0 + 11)
    tracker.failed("disk_full", T0 + 20, T0 + 20)
    assert tracker.lost_seconds(T0 + 24) == {"disk_full": 7.0, "write_error": 1.0}


def test_a_new_reason_ends_one_gap_and_begins_another():
    tracker = OutageTracker()
    tracker.failed("write_error", T0, T0)
    change = tracker.failed("disk_full", T0 + 4, T0 + 5)
    assert (change.error, change.previous) == ("disk_full", "write_error")
    assert change.ended == Gap("write_error", T0, T0 + 5)
    assert change.started.start == T0 + 5 and change.started.reason == "disk_full"


def test_stopping_ends_the_outage_and_a_resumed_first_frame_never_precedes_its_start():
    tracker = OutageTracker()
    assert tracker.stopped(T0) is None
    tracker.failed("disk_full", T0, T0)
    assert tracker.stopped(T0 + 9).ended.seconds == 9
    tracker.refused("disk_full", T0 + 20)
    # a session replaying pre-roll from before the outage: nothing was lost
    assert tracker.resumed(first_frame=T0 + 15).ended.seconds == 0


def test_retries_back_off_while_they_fail_and_refusals_do_not_count():
    tracker = OutageTracker()
    assert tracker.refused("disk_full", T0).started.start == T0
    assert tracker.refused("disk_full", T0 + 1) is None
    tracker.failed("disk_full", T0 + 2, T0 + 2)
    delays = [tracker.retry_delay()]
    for n in range(6):
        tracker.failed("disk_full", T0 + 3 + n, T0 + 3 + n)
        delays.append(tracker.retry_delay())
    assert delays[0] == RETRY_S and delays == sorted(delays) and delays[-1] == MAX_RETRY_S
    tracker.resumed(T0 + 20)
    tracker.failed("disk_full", T0 + 30, T0 + 30)
    assert tracker.retry_delay() == RETRY_S, "a new outage starts the back-off again"


def test_heartbeat_only_during_an_outage_and_at_its_pace():
    tracker = OutageTracker()
    assert not tracker.heartbeat_due(T0)
    tracker.failed("disk_full", T0, T0)
    assert not tracker.heartbeat_due(T0 + HEARTBEAT_S - 0.1)
    assert tracker.heartbeat_due(T0 + HEARTBEAT_S)
    assert not tracker.heartbeat_due(T0 + HEARTBEAT_S + 1)
    assert tracker.heartbeat_due(T0 + 2 * HEARTBEAT_S)
    tracker.resumed(T0 + 25)
    assert not tracker.heartbeat_due(T0 + 100)


def test_resume_threshold():
    assert resume_threshold(None, 0) == RESUME_FLOOR_BYTES
    assert resume_threshold(10 * 2**20, 100_000) == 10 * 2**20  # min_free rules
    assert resume_threshold(None, 500_000) == 2_500_000  # 5 s of a 4 Mbit/s stream


# ---- the gaps table --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    db = Database(tmp_path / "index.db")
    yield GapStore(db)
    db.close()


def test_a_gap_is_stored_open_moved_on_and_closed(store):
    call = store.db.call
    call(store.opened, "cam", T0, "disk_full")
    call(store.ongoing, "cam", T0 + 10)
    call(store.ongoing, "other", T0 + 10)  # no open gap there: nothing happens
    [gap] = call(store.gaps, "cam")
    assert (gap.start_ts, gap.end_ts, gap.reason, gap.open) == (T0, T0 + 10, "disk_full", True)
    closed = call(store.closed, "cam", T0 - 0.4, T0 + 12, "disk_full")
    assert call(store.gaps, "cam") == [closed]
    assert (closed.start_ts, closed.end_ts, closed.open) == (T0 - 0.4, T0 + 12, False)
    assert closed.seconds == pytest.approx(12.4)
    assert call(store.gaps, "other") == []


def test_a_gap_never_opened_is_stored_whole_and_ranges_filter(store):
    call = store.db.call
    call(store.closed, "cam", T0, T0 + 5, "disk_full")  # the open row could not be written
    call(store.closed, "cam", T0 + 100, T0 + 101, "write_error")
    call(store.closed, "b", T0 + 2, T0 + 3, "disk_full")
    assert [g.start_ts for g in call(store.gaps, "cam")] == [T0, T0 + 100]
    assert [g.stream_id for g in call(store.gaps, None, T0 + 4, T0 + 50)] == ["cam"]
    assert [g.reason for g in call(store.gaps, "cam", None, None, "write_error")] == [
        "write_error"]
    assert call(store.gaps, "cam", T0 + 6, T0 + 99) == []


def test_open_gaps_of_a_dead_service_close_where_they_were_last_seen(store):
    call = store.db.call
    call(store.opened, "cam", T0, "disk_full")
    call(store.ongoing, "cam", T0 + 40)
    call(store.opened, "b", T0 + 5, "write_error")
    assert call(store.close_dangling) == 2
    assert [(g.stream_id, g.end_ts, g.open) for g in call(store.gaps)] == [
        ("cam", T0 + 40, False), ("b", T0 + 5, False)]
    assert call(store.close_dangling) == 0


def test_a_new_outage_closes_a_forgotten_open_gap_of_the_stream(store):
    call = store.db.call
    call(store.opened, "cam", T0, "write_error")
    call(store.opened, "cam", T0 + 60, "disk_full")
    assert [(g.reason, g.open) for g in call(store.gaps, "cam")] == [
        ("write_error", False), ("disk_full", True)]
