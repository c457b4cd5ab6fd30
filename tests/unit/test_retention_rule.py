"""Tiered retention's rule (recording/retention_rule.py) on hand-made segments and events."""

from __future__ import annotations

import math

from streamwarden.recording.retention_rule import (
    EventSpan,
    Intervals,
    Limits,
    Padding,
    Segment,
    Tier,
    Tiers,
    plan,
)

HOUR = 3600.0
DAY = 86400.0
NOW = 100 * DAY
TEN_S = Padding(10, 10)


def hourly(stream: str, first_id: int, start: float, count: int, size: int = 10) -> list[Segment]:
    """`count` one-hour segments of `size` bytes back to back from `start`."""
    return [Segment(first_id + i, stream, start + i * HOUR, start + (i + 1) * HOUR, size)
            for i in range(count)]


def closed(event_id: int, stream: str, first: float, last: float,
           padding: Padding = TEN_S) -> EventSpan:
    return EventSpan.of(event_id, stream, first, last, False, padding)


def test_padding_and_open_events():
    span = closed(1, "a", 1000, 1030, Padding(5, 20))
    assert (span.start, span.end, span.open) == (995, 1050, False)
    still = EventSpan.of(2, "a", 1000, 1030, True, Padding(5, 20))
    assert still.start == 995 and still.end == math.inf and still.open


def test_intervals_merge_and_touching_counts():
    spans = Intervals([(10, 20), (15, 30), (40, 50)])
    assert spans.starts == [10, 40] and spans.ends == [30, 50]
    assert spans.overlaps(0, 10) and spans.overlaps(30, 35) and spans.overlaps(45, 46)
    assert not spans.overlaps(31, 39) and not spans.overlaps(51, 60)
    assert not Intervals([]).overlaps(0, 1)


def test_tiers_per_stream():
    tiers = Tiers([closed(1, "a", 5000, 5100), EventSpan.of(2, "b", 9000, 9000, True,
                                                            Padding(10, 10))])
    assert tiers.of(Segment(1, "a", 4000, 4995)) is Tier.EVENT  # reaches the pre-roll
    assert tiers.of(Segment(2, "a", 5111, 6000)) is Tier.CONTINUOUS  # after the post-roll
    assert tiers.of(Segment(3, "b", 5000, 5100)) is Tier.CONTINUOUS  # another stream's event
    assert tiers.of(Segment(4, "b", 8000, 8985)) is Tier.CONTINUOUS
    assert tiers.of(Segment(5, "b", 8000, 9000)) is Tier.OPEN
    assert tiers.of(Segment(6, "b", 20000, 21000)) is Tier.OPEN  # an open event runs on


def test_continuous_footage_goes_before_event_footage():
    """retention 7 d, event_retention 30 d: a 10-day-old event keeps its hour, the hours
    around it go; a 31-day-old event's footage goes too."""
    segments = (hourly("a", 1, NOW - 31 * DAY, 3) + hourly("a", 10, NOW - 10 * DAY, 3)
                + hourly("a", 20, NOW - 2 * DAY, 2))
    events = [closed(1, "a", NOW - 31 * DAY + 1.5 * HOUR, NOW - 31 * DAY + 1.6 * HOUR),
              closed(2, "a", NOW - 10 * DAY + 1.5 * HOUR, NOW - 10 * DAY + 1.6 * HOUR)]
    result = plan(segments, events, NOW, Limits(retention=7 * DAY, event_retention=30 * DAY))
    assert result.segments == [1, 2, 3, 10, 12] and result.by_age == 5
    assert result.events == [1]  # its footage is gone; event 2 still has its hour


def test_without_event_retention_events_follow_retention_and_rows_stay():
    segments = hourly("a", 1, NOW - 10 * DAY, 3)
    events = [closed(1, "a", NOW - 10 * DAY + 1.5 * HOUR, NOW - 10 * DAY + 1.6 * HOUR)]
    result = plan(segments, events, NOW, Limits(retention=7 * DAY))
    assert result.segments == [1, 2, 3] and result.events == []


def test_open_event_footage_survives_age_and_size():
    """An object tracked for 9 days (a parked car): its footage is kept from its pre-roll on,
    whatever the limits; footage before it still goes."""
    segments = hourly("a", 1, NOW - 10 * DAY, 48)
    events = [EventSpan.of(1, "a", NOW - 9 * DAY, NOW - HOUR, True, Padding(10, 10))]
    result = plan(segments, events, NOW, Limits(retention=HOUR, event_retention=2 * HOUR,
                                                max_size=0))
    kept = {s.id for s in segments} - set(result.segments)
    assert min(kept) == 24  # the hour holding NOW - 9 d - 10 s, and every one after it
    assert kept == set(range(24, 49)) and result.events == []


def test_max_size_deletes_continuous_then_oldest_event_footage():
    # streams a and b, 10 bytes an hour; events on a at hours 1 and 5, on b at hour 2
    segments = hourly("a", 1, 0, 8) + hourly("b", 101, 0, 4)
    events = [closed(1, "a", 1.2 * HOUR, 1.3 * HOUR), closed(2, "a", 5.2 * HOUR, 5.3 * HOUR),
              closed(3, "b", 2.2 * HOUR, 2.3 * HOUR)]
    # 120 bytes, 30 of them events': down to 30, all 9 continuous hours go, oldest first
    result = plan(segments, events, NOW, Limits(max_size=30))
    assert result.by_age == 0
    assert result.segments == [1, 101, 102, 3, 4, 104, 5, 7, 8]
    # down to 20: then the oldest event footage (a's hour 1)
    result = plan(segments, events, NOW, Limits(max_size=20))
    assert result.segments[9:] == [2]


def test_being_written_is_never_deleted_but_counts_towards_size():
    segments = [Segment(1, "a", 0, 10, 100), Segment(2, "a", 10, None, 100)]
    assert plan(segments, [], NOW, Limits(retention=1, max_size=50)).segments == [1]


def test_age_deletions_count_before_size():
    segments = hourly("a", 1, NOW - 10 * HOUR, 10)
    result = plan(segments, [], NOW, Limits(retention=5 * HOUR, max_size=30))
    assert result.by_age == 4 and result.segments == [1, 2, 3, 4, 5, 6, 7]  # 5 h ago: not yet


def test_event_rows_outlive_their_footage():
    """An event older than event_retention whose footage a long segment still holds stays."""
    segments = [Segment(1, "a", NOW - 40 * DAY, NOW - 20 * DAY)]  # a 20-day segment
    events = [closed(1, "a", NOW - 35 * DAY, NOW - 35 * DAY),
              closed(2, "b", NOW - 35 * DAY, NOW - 35 * DAY),  # no footage at all
              closed(3, "a", NOW - DAY, NOW - DAY)]  # young
    result = plan(segments, events, NOW, Limits(retention=7 * DAY, event_retention=30 * DAY))
    assert result.segments == []  # it ended 20 days ago and holds an event: kept 30 days
    assert result.events == [2]
    later = plan(segments, events, NOW + 11 * DAY, Limits(retention=7 * DAY,
                                                           event_retention=30 * DAY))
    assert later.segments == [1] and later.events == [1, 2]


def test_no_limits_no_deletions():
    segments = hourly("a", 1, 0, 5)
    assert not Limits().active
    result = plan(segments, [closed(1, "a", 0, 1)], NOW, Limits())
    assert result.segments == [] and result.events == []


def test_padding_from_settings():
    assert Padding.of(None, 10, 4) == Padding(4, 10)  # the whole ring
    assert Padding.of(2, 5, 4) == Padding(2, 5)
    assert Padding.of(30, 5, 4) == Padding(4, 5)  # never more than the ring holds
