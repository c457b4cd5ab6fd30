"""The recording timeline's rules (recording/timeline.py) on hand-made rows: spans merged from
segments, every gap's reason and bounds, priorities, tolerances, and an exact tiling."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamwarden.recording.timeline import (
    Facts,
    Mark,
    Period,
    Segment,
    Timeline,
    build,
    downtime_lost,
)

T = 1_700_000_000.0  # every time below is T + seconds


def seg(i: int, start: float, end: float | None, status: str = "complete") -> Segment:
    return Segment(i, T + start, None if end is None else T + end, status)


def period(start: float, end: float | None) -> Period:
    return Period(T + start, None if end is None else T + end)


def mark(reason: str, start: float, end: float | None) -> Mark:
    return Mark(reason, T + start, None if end is None else T + end)


def recording(segments: list[Segment], **facts) -> Facts:
    """A service running and recording requested over the whole test range, unless told."""
    facts.setdefault("runs", [period(-1000, None)])
    facts.setdefault("wanted", [period(-1000, None)])
    return Facts(segments=segments, **facts)


def layout(timeline: Timeline) -> list[tuple[float, float, str]]:
    """Every span and gap in time order, relative to T, checked to tile the range exactly."""
    items = sorted([(s.start, s.end, "covered") for s in timeline.spans]
                   + [(g.start, g.end, g.reason) for g in timeline.gaps])
    assert items, "a non-empty range has at least one span or gap"
    assert items[0][0] == timeline.start and items[-1][1] == timeline.end
    for (_, end, _), (start, _, _) in itertools.pairwise(items):
        assert end == start, "spans and gaps tile the range: no hole, no overlap"
    return [(round(s - T, 3), round(e - T, 3), what) for s, e, what in items]


def test_contiguous_segments_are_one_span_with_their_ids():
    facts = recording([seg(1, 0, 2), seg(2, 2, 4), seg(3, 4.04, 6)])
    timeline = build(facts, T, T + 6, now=T + 100)
    assert layout(timeline) == [(0, 6, "covered")]
    assert [s.id for s in timeline.spans[0].segments] == [1, 2, 3]


def test_the_range_clips_spans_and_the_segments_keep_their_own_bounds():
    facts = recording([seg(1, 0, 10)])
    timeline = build(facts, T + 2, T + 5, now=T + 100)
    assert layout(timeline) == [(2, 5, "covered")]
    assert timeline.spans[0].segments == (seg(1, 0, 10),)  # to seek: offset = t - start


def test_camera_offline_while_recording_is_a_gap_to_where_recording_resumes():
    # the camera's last frame at 10, back at 15.2; the next session starts at the keyframe
    # at 16 (the GOP after the camera returned belongs to the outage: slack)
    facts = recording([seg(1, 0, 10), seg(2, 16, 20)], offline=[period(10.02, 15.2)])
    assert layout(build(facts, T, T + 20, now=T + 100)) == [
        (0, 10, "covered"), (10, 16, "camera_offline"), (16, 20, "covered")]


def test_camera_offline_while_not_recording_is_recording_off():
    facts = recording([seg(1, 0, 10), seg(2, 30, 40)], wanted=[period(-5, 10), period(30, None)],
                      offline=[period(12, 20)])
    assert layout(build(facts, T, T + 40, now=T + 100)) == [
        (0, 10, "covered"), (10, 30, "recording_off"), (30, 40, "covered")]


def test_recording_stopped_then_started():
    facts = recording([seg(1, 0, 10), seg(2, 20.5, 30)], wanted=[period(0, 10), period(20, None)])
    assert layout(build(facts, T - 5, T + 30, now=T + 100)) == [
        (-5, 0, "recording_off"), (0, 10, "covered"), (10, 20.5, "recording_off"),
        (20.5, 30, "covered")]


def test_pre_roll_footage_before_the_request_is_covered():
    facts = recording([seg(1, 5, 20)], wanted=[period(10, None)])
    assert layout(build(facts, T, T + 20, now=T + 20)) == [
        (0, 5, "recording_off"), (5, 20, "covered")]


def test_service_stopped_and_restarted():
    # a clean stop at 30 (the last frame recorded at 29.9), a start at 50; the camera
    # connects 0.4 s after the stream is added and the first keyframe follows
    facts = recording([seg(1, 0, 29.9), seg(2, 50.9, 60)],
                      runs=[period(-100, 30), period(50, None)],
                      wanted=[period(-100, 30), period(50.1, None)],
                      offline=[period(50.1, 50.5)])
    assert layout(build(facts, T, T + 60, now=T + 100)) == [
        (0, 29.9, "covered"), (29.9, 50, "service_not_running"), (50, 50.1, "recording_off"),
        (50.1, 50.9, "camera_offline"), (50.9, 60, "covered")]


def test_after_a_crash_the_last_heartbeat_ends_the_run():
    # the last heartbeat at 25, footage until 28 (the file's playable end), back at 60
    facts = recording([seg(1, 0, 28), seg(2, 61, 70)], runs=[period(-100, 25), period(60, None)],
                      wanted=[period(-100, 25), period(60.1, None)], offline=[period(60.1, 60.6)])
    assert layout(build(facts, T, T + 70, now=T + 100)) == [
        (0, 28, "covered"), (28, 60, "service_not_running"), (60, 60.1, "recording_off"),
        (60.1, 61, "camera_offline"), (61, 70, "covered")]


def test_before_the_first_recorded_run_the_service_was_not_running():
    # recording requested at 9.5, its first keyframe at 10: that wait is the start's
    facts = recording([seg(1, 10, 20)], runs=[period(9, None)], wanted=[period(9.5, None)])
    assert layout(build(facts, T, T + 20, now=T + 20)) == [
        (0, 9, "service_not_running"), (9, 10, "recording_off"), (10, 20, "covered")]


def test_deleted_footage_wins_over_everything_it_overlaps():
    facts = recording([seg(3, 45, 50)], runs=[period(-100, 35), period(38, None)],
                      marks=[mark("deleted", 0, 20), mark("deleted", 20, 36)])
    assert layout(build(facts, T, T + 50, now=T + 60)) == [
        (0, 36, "deleted"), (36, 38, "service_not_running"), (38, 45, "unknown"),
        (45, 50, "covered")]


def test_disk_full_open_gap_lasts_until_now_and_wins_over_the_camera():
    facts = recording([seg(1, 0, 10), seg(2, 10, None)], marks=[mark("disk_full", 10, None)],
                      offline=[period(14, 16)])
    assert layout(build(facts, T, T + 20, now=T + 20)) == [
        (0, 10, "covered"), (10, 20, "disk_full")]


def test_write_error_then_recording_resumes():
    facts = recording([seg(1, 0, 10), seg(2, 14, 20)], marks=[mark("write_error", 10, 14)])
    assert layout(build(facts, T, T + 20, now=T + 20)) == [
        (0, 10, "covered"), (10, 14, "write_error"), (14, 20, "covered")]


def test_a_segment_being_written_covers_until_now_except_while_the_camera_is_away():
    facts = recording([seg(1, 0, 10), seg(2, 10, None)], offline=[period(30, None)])
    assert layout(build(facts, T, T + 40, now=T + 40)) == [
        (0, 30, "covered"), (30, 40, "camera_offline")]
    assert [s.id for s in build(facts, T, T + 40, now=T + 40).spans[0].segments] == [1, 2]


def test_a_discontinuity_explains_the_hole_it_made():
    # the jump at 10.1; the segment ended at the last frame before it, the next one starts at
    # the first keyframe after it
    facts = recording([seg(1, 0, 10), seg(2, 11.5, 20)], marks=[mark("discontinuity", 10.1,
                                                                     10.1)])
    assert layout(build(facts, T, T + 20, now=T + 20)) == [
        (0, 10, "covered"), (10, 11.5, "discontinuity"), (11.5, 20, "covered")]


def test_a_discontinuity_bridged_without_a_hole_leaves_no_gap():
    facts = recording([seg(1, 0, 10), seg(2, 10, 20)], marks=[mark("discontinuity", 10, 10)])
    assert layout(build(facts, T, T + 20, now=T + 20)) == [(0, 20, "covered")]


def test_a_tiny_hole_with_a_discontinuity_in_it_is_not_hidden():
    facts = recording([seg(1, 0, 10), seg(2, 10.3, 20)], marks=[mark("discontinuity", 10.1,
                                                                     10.1)])
    assert layout(build(facts, T, T + 20, now=T + 20)) == [
        (0, 10, "covered"), (10, 10.3, "discontinuity"), (10.3, 20, "covered")]


def test_what_nothing_explains_is_unknown():
    facts = recording([seg(1, 0, 10), seg(2, 20, 30)])
    assert layout(build(facts, T, T + 30, now=T + 30)) == [
        (0, 10, "covered"), (10, 20, "unknown"), (20, 30, "covered")]


def test_a_short_unexplained_piece_joins_the_gap_next_to_it_not_a_long_one():
    facts = recording([seg(1, 0, 10), seg(2, 21.9, 30), seg(3, 40, 50)],
                      offline=[period(10, 20), period(30, 35)])
    assert layout(build(facts, T, T + 50, now=T + 50)) == [
        (0, 10, "covered"), (10, 21.9, "camera_offline"), (21.9, 30, "covered"),
        (30, 35, "camera_offline"), (35, 40, "unknown"), (40, 50, "covered")]


def test_corrupt_segments_cover_nothing():
    facts = recording([seg(1, 0, 10), seg(2, 10, 20, "corrupt")],
                      marks=[mark("write_error", 10, 20)])
    timeline = build(facts, T, T + 20, now=T + 20)
    assert layout(timeline) == [(0, 10, "covered"), (10, 20, "write_error")]
    assert [s.id for s in timeline.spans[0].segments] == [1]


def test_nothing_recorded_at_all():
    assert layout(build(Facts(), T, T + 10, now=T + 10)) == [(0, 10, "service_not_running")]
    empty = build(Facts(), T + 5, T + 5, now=T + 10)
    assert empty.spans == () and empty.gaps == ()


def test_lost_seconds_by_reason_only_for_losses_and_within_a_window():
    facts = recording([seg(1, 0, 10), seg(2, 20, 30), seg(3, 40, 50)],
                      wanted=[period(0, 30), period(40, None)], runs=[period(-10, None)],
                      offline=[period(10, 20)])
    timeline = build(facts, T, T + 50, now=T + 50)
    assert timeline.lost() == {"camera_offline": 10.0}  # recording_off is no loss
    assert timeline.lost(T + 15, T + 50) == {"camera_offline": 5.0}
    assert timeline.lost(T + 25, T + 50) == {}


@pytest.mark.parametrize(("wanted", "lost"), [
    ([period(0, None)], 20.0),  # still open: the service died while recording
    ([period(0, 29.5)], 20.0),  # closed by the shutdown itself
    ([period(0, 10)], 0.0),  # stopped long before: nothing was wanted
    ([], 0.0),
])
def test_downtime_lost_only_for_streams_recording_when_the_service_stopped(wanted, lost):
    assert downtime_lost(T + 30, T + 50, wanted, margin=5) == lost
    assert downtime_lost(None, T + 50, wanted, margin=5) == 0.0


def test_any_facts_tile_the_range_exactly():
    times = st.floats(min_value=-20, max_value=120, allow_nan=False).map(lambda x: round(x, 1))
    reasons = st.sampled_from(["disk_full", "write_error", "deleted", "discontinuity"])

    def intervals(count: int):
        return st.lists(st.tuples(times, times).map(sorted), max_size=count)

    @given(segments=intervals(8), runs=intervals(3), wanted=intervals(3),
           offline=intervals(3), marks=st.lists(st.tuples(reasons, times, times),
                                                         max_size=4),
           open_segment=st.booleans(), start=times, length=st.floats(0.1, 100))
    @settings(max_examples=300, deadline=None, database=None, derandomize=True)
    def check(segments, runs, wanted, offline, marks, open_segment, start, length) -> None:
        facts = Facts(
            segments=[seg(i, a, None if open_segment and i == len(segments) - 1 else b)
                      for i, (a, b) in enumerate(segments)],
            runs=[period(a, b) for a, b in runs], wanted=[period(a, b) for a, b in wanted],
            offline=[period(a, b) for a, b in offline],
            marks=[mark(r, a, a if r == "discontinuity" else max(a, b)) for r, a, b in marks])
        timeline = build(facts, T + start, T + start + length, now=T + 120)
        layout(timeline)
        for span in timeline.spans:
            assert span.segments, "a span is made of segments"

    check()


def test_a_sliver_under_a_microsecond_is_given_to_its_neighbour():
    """A range asked for in ISO microseconds starting 0.4 µs before a run began must not open
    with a 0.4 µs `service_not_running` gap (seen in tests/test_timeline.py)."""
    from streamwarden.recording.timeline import _without_slivers

    pieces = [(10.0, 10.0000004, "service_not_running"), (10.0000004, 12.0, "covered"),
              (12.0, 12.0000001, "camera_offline"), (12.0000001, 15.0, "covered")]
    assert _without_slivers(pieces) == [(10.0, 15.0, "covered")]
    assert _without_slivers([(1.0, 1.0000001, "covered")]) == [(1.0, 1.0000001, "covered")]
