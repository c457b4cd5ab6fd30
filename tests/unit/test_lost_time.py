"""Lost seconds from the timeline (recording/lost_time.py): consecutive windows, each second
counted once, only the reasons the recorder does not count itself."""

from __future__ import annotations

from streamwarden.recording.lost_time import LostTime
from streamwarden.recording.timeline import Facts, Mark, Period, Segment, build

T = 1_700_000_000.0


def _timeline(start: float, end: float):
    # recording wanted throughout; the camera away 10-20, the disk full 30-40, a jump at 50
    facts = Facts(segments=[Segment(1, T, T + 10), Segment(2, T + 20, T + 30),
                            Segment(3, T + 40, T + 50), Segment(4, T + 51, T + 100)],
                  runs=[Period(T - 100, None)], wanted=[Period(T - 100, None)],
                  offline=[Period(T + 10, T + 20), Period(T + 32, T + 35)],
                  marks=[Mark("disk_full", T + 30, T + 40), Mark("discontinuity", T + 50,
                                                                 T + 50)])
    return build(facts, T + start, T + end, now=T + 100)


def test_windows_add_up_to_the_whole_and_nothing_twice():
    lost = LostTime()
    for upto in (5, 15, 15, 33, 60, 100):
        window = lost.window("cam", T, T + upto)
        if window is None:
            continue
        start, end = window
        lost.count("cam", _timeline(start - T - 30, end - T), start, end)
    # disk_full is the recorder's to count; the camera away inside it is disk_full's time
    assert lost.seconds("cam") == {"camera_offline": 10.0, "discontinuity": 1.0}
    assert lost.window("cam", T, T + 100) is None


def test_a_window_counted_twice_counts_once():
    lost = LostTime()
    timeline = _timeline(0, 100)
    lost.count("cam", timeline, T, T + 100)
    lost.count("cam", timeline, T, T + 100)
    assert lost.seconds("cam") == {"camera_offline": 10.0, "discontinuity": 1.0}


def test_added_seconds_and_other_streams():
    lost = LostTime()
    lost.add("cam", "service_not_running", 20.0)
    lost.add("cam", "service_not_running", 0.0)
    lost.add("cam", "service_not_running", 5.5)
    assert lost.seconds("cam") == {"service_not_running": 25.5}
    assert lost.seconds("other") == {}
