"""A stream's counters and rates from plain numbers (the probe reads the buffer, not these)."""

from __future__ import annotations

import pytest

from streamwarden.ingest.stats import RateMeter, StreamCounters


def test_counters_split_video_keyframes_and_audio():
    counters = StreamCounters()
    for index in range(50):
        counters.count("video", 1000 if index % 25 == 0 else 100, index % 25 == 0)
        counters.count("audio", 10, False)  # an audio "keyframe" flag means nothing
    assert (counters.frames, counters.keyframes, counters.audio_frames) == (50, 2, 50)
    assert counters.bytes == 2 * 1000 + 48 * 100 + 50 * 10
    assert counters.last_frame_ns > 0


def test_rates_over_the_last_seconds_need_half_a_second_first():
    counters, meter = StreamCounters(), RateMeter()
    t = 0.0
    for _ in range(40):  # 10 s of 25 fps at 100 kB/s, sampled every 250 ms
        for _ in range(6 if int(t * 4) % 4 else 7):
            counters.on_video(500, False)
        meter.sample(t, counters)
        if t < 0.5:
            assert meter.fps == 0.0, "no rate from under half a second"
        t += 0.25
    assert meter.fps == pytest.approx(25, rel=0.1)
    assert meter.bitrate_kbps == pytest.approx(25 * 500 * 8 / 1000, rel=0.1)
    assert t - meter.samples[0][0] <= 3.5, "only the last ~3 s count"


def test_damage_and_clock_jumps_are_counted_once_each():
    counters = StreamCounters()
    counters.new_attempt()
    counters.on_video(100, True, 0, damaged=True)  # an attempt's first frame: no damage
    counters.on_video(100, False, 40_000_000, damaged=True)
    assert counters.damaged_frames == 1
    counters.on_video(100, False, 300 * 10**9)  # the clock leapt 300 s in one frame
    assert counters.discontinuities == 0, "counted when the stream takes them"
    [(wall, seconds)] = counters.take_jumps()
    assert 299 < seconds < 300.1 and counters.discontinuities == 1
    # an RTP clock jump and the small step it leaves in the decode times: one discontinuity
    merged = counters.take_jumps([(wall + 30, -299.9), (wall + 30.5, -0.1)])
    assert merged == [(wall + 30, -299.9)] and counters.discontinuities == 2
    counters.new_attempt()  # a reconnect's timestamps start afresh: no jump
    counters.on_video(100, True, 0)
    assert counters.take_jumps() == []
