"""The soak benchmark's arithmetic (bench/soak_figures.py) on hand-made data: slopes, frames
lost outside the fault windows, and the grouping of the service's error lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak_figures import (  # bench/ is not a package: on the path above
    ALL_CAMERAS,
    Frame,
    Sample,
    Window,
    count_losses,
    fd_kind,
    group_errors,
    kind_changes,
    parse_error_line,
    slope_per_hour,
    socket_kinds,
    trend,
)

FPS = 25.0


def frames(first_seq: int, count: int, first_wall: float) -> list[Frame]:
    return [Frame(first_seq + i, first_wall + i / FPS) for i in range(count)]


def sample(t: float, fds: int, rss_kib: int = 100_000, kinds: dict | None = None,
           rest: bool = False) -> Sample:
    return Sample(t=t, rss_kib=rss_kib, fds=fds, threads=10, children=1, cpu_ticks=0,
                  cpu_pct=None, fd_kinds=kinds or {}, rest=rest)


def test_slope_is_per_hour_and_needs_two_times() -> None:
    assert slope_per_hour([(0, 10), (60, 12), (120, 14)]) == pytest.approx(120.0)
    assert slope_per_hour([(5, 1), (5, 2)]) is None
    assert slope_per_hour([]) is None


def test_trend_leaves_out_the_warm_up() -> None:
    samples = [sample(0, 10), sample(30, 50), sample(60, 50), sample(90, 52)]
    result = trend(samples, "fds", 1.0, warmup_s=60)
    assert (result["points"], result["first"], result["last"], result["change"]) == (2, 50, 52, 2)
    assert result["slope_per_hour"] == pytest.approx(240.0)
    assert result["basis"] == "all"


def test_trend_reads_the_samples_at_rest_when_there_are_enough() -> None:
    samples = [sample(0, 10, rest=True), sample(60, 14), sample(120, 10, rest=True),
               sample(150, 16), sample(180, 10, rest=True)]
    result = trend(samples, "fds", 1.0, warmup_s=60)
    assert (result["basis"], result["points"], result["change"], result["max"]) == (
        "rest", 2, 0, 10)
    assert result["slope_per_hour"] == 0


def test_fd_kinds_say_which_kind_climbed() -> None:
    samples = [sample(0, 3, kinds={"socket": 1, "pipe": 2}),
               sample(60, 5, kinds={"socket": 3, "pipe": 2}),
               sample(120, 6, kinds={"socket": 3, "pipe": 2, "eventfd": 1})]
    assert kind_changes(samples, warmup_s=60) == {"eventfd": 1}
    assert fd_kind("socket:[4242]") == "socket"
    assert fd_kind("anon_inode:[eventfd]") == "eventfd"
    assert fd_kind("/tmp/x.mp4") == "file"


def test_contiguous_recording_loses_nothing() -> None:
    loss = count_losses(frames(0, 100, 1000.0), "cam1", [], fps=FPS, margin=2, end=1003.0,
                        origin=1000.0)
    assert (loss.frames, loss.outside, loss.inside, loss.repeats) == (100, 0, 0, 0)


def test_a_gap_inside_its_cameras_window_is_excused_but_not_another_cameras() -> None:
    recorded = frames(0, 50, 1000.0) + frames(100, 50, 1004.0)  # 50 frames (2 s) missing
    window = [Window("stall", 1002.5, 1003.5, ("cam1",))]
    mine = count_losses(recorded, "cam1", window, fps=FPS, margin=1, end=1006.0, origin=1000.0)
    assert (mine.outside, mine.inside) == (0, 50)
    other = count_losses(recorded, "cam2", window, fps=FPS, margin=1, end=1006.0, origin=1000.0)
    assert (other.outside, other.inside) == (50, 0)
    assert other.gaps_outside == [{"kind": "skip", "at_s": 2.0, "until_s": 4.0, "frames": 50}]


def test_only_the_part_of_a_gap_beyond_the_margin_counts() -> None:
    recorded = frames(0, 25, 1000.0) + frames(125, 25, 1005.0)  # sent 1001.0 .. 1004.96
    window = [Window("disk", 1001.5, 1001.98, (ALL_CAMERAS,))]
    loss = count_losses(recorded, "cam3", window, fps=FPS, margin=1.0, end=1006.0, origin=1000)
    assert loss.inside == 50  # 1001.0 .. 1002.96: window end + margin is 1002.98
    assert loss.outside == 50  # 1003.0 .. 1004.96


def test_a_restarted_count_is_measured_by_time() -> None:
    # Last old frame sent at 1000.96, the first of the new count at 1003.0: 1001.0 .. 1002.96
    # are missing, 50 frames, though their numbers are unknown.
    recorded = frames(500, 25, 1000.0) + frames(0, 25, 1003.0)
    loss = count_losses(recorded, "cam1", [], fps=FPS, margin=0, end=1004.0, origin=1000.0)
    assert loss.outside == 50
    assert loss.restarts_outside == 1
    repeat = [*frames(0, 10, 1000.0), Frame(5, 1000.40)]  # a step back with no time lost
    assert count_losses(repeat, "cam1", [], fps=FPS, margin=0, end=1000.4,
                        origin=1000.0).repeats == 1


def test_a_recording_that_stops_early_loses_its_tail() -> None:
    recorded = frames(0, 25, 1000.0)  # the last frame was sent at 1000.96
    loss = count_losses(recorded, "cam1", [], fps=FPS, margin=0, end=1010.0, origin=1000.0)
    assert loss.outside == 225
    assert loss.gaps_outside[0]["kind"] == "tail"


def test_error_lines_json_gstreamer_and_glib() -> None:
    json_line = json.dumps({"ts": "2026-11-30T17:00:00.000+00:00", "level": "error",
                            "logger": "streamwarden.recording", "msg": "stream cam2: disk"})
    found = parse_error_line(json_line)
    assert found is not None and found.source == "streamwarden.recording"
    assert found.wall == pytest.approx(1796058000.0)
    assert parse_error_line(json_line.replace('"error"', '"warning"')) is None
    gst = "0:00:05.123456789 12345 0x55d0c0 ERROR  rtspsrc gstrtspsrc.c:6000:func: boom"
    assert parse_error_line(gst).source == "gst:rtspsrc"
    glib = "(python:123): GStreamer-CRITICAL **: 17:00:00.000: gst_object_unref: assertion"
    assert parse_error_line(glib).level == "critical"
    assert parse_error_line("plain text") is None


def test_errors_group_by_text_and_say_during_which_fault() -> None:
    lines = [parse_error_line(json.dumps({"ts": ts, "level": "error", "logger": "x",
                                          "msg": f"port {port} refused"}))
             for ts, port in (("1970-01-01T00:00:10+00:00", 1), ("1970-01-01T00:01:40+00:00", 2))]
    groups = group_errors(lines, [Window("flap", 8.0, 12.0, ("cam1",))], margin=1.0)
    assert len(groups) == 1
    assert groups[0]["count"] == 2
    assert groups[0]["during"] == {"flap": 1, "none": 1}


def test_sockets_are_named_by_their_ports_and_peers() -> None:
    ss = """\
tcp   LISTEN 0 2048 127.0.0.1:8080 0.0.0.0:* users:(("python",pid=10,fd=5))
tcp   ESTAB  0 0    127.0.0.1:40000 127.0.0.1:8555 users:(("python",pid=10,fd=9))
tcp   ESTAB  0 0    127.0.0.1:8555 127.0.0.1:40000 users:(("python",pid=20,fd=7))
tcp   ESTAB  0 0    127.0.0.1:41000 127.0.0.1:9999 users:(("python",pid=10,fd=11))
u_str ESTAB  0 0    * 100 * 101 users:(("python",pid=10,fd=3))
u_str ESTAB  0 0    * 101 * 100 users:(("python",pid=10,fd=4))
u_str ESTAB  0 0    * 200 * 201 users:(("python",pid=10,fd=6),("python",pid=30,fd=6))
u_str ESTAB  0 0    * 201 * 200 users:(("python",pid=30,fd=8))
"""
    kinds = socket_kinds(ss, 10, {8080: "api", 8555: "camera-steady"})
    assert kinds == {"tcp LISTEN api": 1, "tcp ESTAB -> camera-steady": 1, "tcp ESTAB other": 1,
                     "u_str ESTAB socketpair": 2, "u_str ESTAB other process": 1}
