"""The activity gate on hand-made frame-size sequences and a fake clock (media/activity.py)."""

from __future__ import annotations

import random

from streamwarden.media.activity import Activity, ActivityMeter, ActivitySettings

FPS = 25
GOP = 25


def feed(meter: ActivityMeter, sizes, start: float = 0.0, keyframe_size: int = 30_000):
    """Feed `sizes` (one per frame at FPS, a keyframe every GOP frames): states per frame."""
    states = []
    for index, size in enumerate(sizes):
        now = start + index / FPS
        keyframe = index % GOP == 0
        states.append(meter.observe(keyframe_size if keyframe else size, keyframe, now))
    return states


def noisy(mean: float, spread: float, count: int, seed: int = 1) -> list[int]:
    rng = random.Random(seed)
    return [max(1, round(rng.gauss(mean, spread))) for _ in range(count)]


def test_warm_up_is_active_then_a_still_scene_stays_idle():
    meter = ActivityMeter()
    states = feed(meter, noisy(2000, 150, 60 * FPS))
    assert states[0] is Activity.ACTIVE  # no baseline yet: never hide a stream's start
    assert states[2 * FPS:] == [Activity.IDLE] * (58 * FPS)
    assert meter.triggers == 0


def test_a_perfectly_still_synthetic_scene_is_idle_despite_zero_deviation():
    meter = ActivityMeter()
    sizes = [30 + (i % 3) for i in range(30 * FPS)]  # a few bytes of jitter
    states = feed(meter, sizes)
    assert set(states[3 * FPS:]) == {Activity.IDLE}


def test_a_step_in_p_frame_sizes_triggers_at_once():
    meter = ActivityMeter()
    feed(meter, noisy(2000, 150, 20 * FPS))
    assert meter.state is Activity.IDLE
    states = feed(meter, [6000] * FPS, start=20.0)
    assert states[1] is Activity.ACTIVE  # frame 0 is the keyframe, frame 1 the first P-frame
    assert meter.triggers == 1


def test_a_slow_bitrate_drift_does_not_trigger():
    meter = ActivityMeter()
    feed(meter, noisy(2000, 150, 10 * FPS))
    # the bitrate triples over two minutes (dusk noise, an encoder setting): 1 % per second
    drift = [round(2000 * (1 + 2 * i / (120 * FPS))) + round(random.Random(i).gauss(0, 150))
             for i in range(120 * FPS)]
    states = feed(meter, drift, start=10.0)
    assert set(states) == {Activity.IDLE}
    assert meter.mean > 5000  # the baseline followed


def test_hold_keeps_it_active_for_n_seconds_after_activity_ends():
    settings = ActivitySettings(hold=5.0)
    meter = ActivityMeter(settings)
    feed(meter, noisy(2000, 100, 20 * FPS))
    moving_for = 3 * FPS
    states = feed(meter, noisy(2000, 100, 20 * FPS, seed=2)[:0] + [8000] * moving_for
                  + noisy(2000, 100, 15 * FPS, seed=3), start=20.0)
    last_moving = moving_for - 1
    first_idle = states.index(Activity.IDLE, moving_for)
    held = (first_idle - last_moving) / FPS
    assert 5.0 <= held <= 5.0 + 2 / FPS
    assert set(states[first_idle:]) == {Activity.IDLE}


def test_keyframes_are_not_in_the_statistic():
    meter = ActivityMeter()
    feed(meter, [500] * 20 * FPS, keyframe_size=80_000)
    assert meter.mean < 600
    assert meter.state is Activity.IDLE
    # a huge keyframe alone is no movement
    assert meter.observe(200_000, True, 100.0) is Activity.IDLE


def test_a_long_movement_does_not_become_the_baseline_quickly():
    meter = ActivityMeter(ActivitySettings(hold=1.0))
    feed(meter, noisy(2000, 150, 20 * FPS))
    states = feed(meter, noisy(9000, 300, 30 * FPS, seed=5), start=20.0)
    non_key = [s for i, s in enumerate(states) if i % GOP]
    assert non_key.count(Activity.ACTIVE) / len(non_key) > 0.9  # 30 s of walking: active


def test_reset_starts_a_new_baseline():
    meter = ActivityMeter()
    feed(meter, noisy(2000, 150, 20 * FPS))
    meter.reset()
    assert meter.state is Activity.ACTIVE and meter.samples == 0
    states = feed(meter, noisy(400, 30, 10 * FPS), start=30.0)
    assert states[-1] is Activity.IDLE


def test_a_lasting_bitrate_step_is_absorbed_within_minutes():
    meter = ActivityMeter(ActivitySettings(hold=1.0))
    feed(meter, noisy(2000, 150, 20 * FPS))
    states = feed(meter, noisy(4000, 300, 180 * FPS, seed=7), start=20.0)
    assert states[FPS + 1] is Activity.ACTIVE
    assert set(states[-30 * FPS:]) == {Activity.IDLE}


def keyframes_decoded(meter: ActivityMeter, key_sizes, start: float, gop_s: float = 1.0):
    """Keyframes of `key_sizes` (one per GOP, P-frames of a still scene between) that the
    meter says are worth decoding."""
    wanted = []
    for index, size in enumerate(key_sizes):
        now = start + index * gop_s
        meter.observe(size, True, now)
        wanted.append(meter.keyframe_wanted(size, now))
        for frame in range(1, GOP):
            meter.observe(2000 + (frame % 5) * 10, False, now + frame / FPS)
    return wanted


def test_an_idle_scene_decodes_a_keyframe_per_refresh_while_its_size_holds():
    meter = ActivityMeter(ActivitySettings(keyframe_change=0.03, keyframe_refresh=10.0))
    feed(meter, noisy(2000, 50, 3 * FPS))
    assert meter.state is Activity.IDLE
    wanted = keyframes_decoded(meter, [30_000 + 200 * (i % 3) for i in range(30)], start=3.0)
    assert wanted[0] and sum(wanted) == 3, wanted  # the first, then once per 10 s
    assert wanted[10] and wanted[20]


def test_a_keyframe_of_another_size_or_an_active_scene_is_decoded():
    meter = ActivityMeter()
    feed(meter, noisy(2000, 50, 3 * FPS))
    assert keyframes_decoded(meter, [30_000, 30_100, 34_000, 34_000], start=3.0) \
        == [True, False, True, False]  # 13 % bigger: the picture changed
    active = ActivityMeter()  # in warm-up, hence active: every keyframe
    assert all(active.keyframe_wanted(30_000, t) for t in range(5))


def test_keyframes_alternating_between_two_sizes_are_two_pictures_already_seen():
    meter = ActivityMeter()
    feed(meter, noisy(2000, 50, 3 * FPS))
    sizes = [21_000, 29_600, 29_700, 29_650] * 5  # a looped clip whose first keyframe is small
    wanted = keyframes_decoded(meter, sizes, start=3.0)
    assert wanted[:4] == [True, True, False, False] and sum(wanted) == 4, wanted
