"""The timestamp rules, driven with hand-made frames: no GStreamer, no pipeline, no sleep."""

from __future__ import annotations

import itertools

import pytest

from streamwarden.media.timeline import (
    SECOND,
    Bridge,
    ContinuousTimeline,
    JumpDetector,
    KeyframeGate,
    Rebase,
    RtpClock,
    WallClock,
    decode_time,
    interleave,
)

MS = 1_000_000
FRAME = 40 * MS


def test_decode_time_is_dts_where_set() -> None:
    assert decode_time(100, 60) == 60
    assert decode_time(100, None) == 100
    assert decode_time(None, None) is None


def test_gate_waits_for_a_video_keyframe_and_again_after_close() -> None:
    gate = KeyframeGate()
    frames = [(False, True), (True, False), (True, True), (False, True), (True, False)]
    assert [gate.admit(video, key) for video, key in frames] == [False, False, True, True, True]
    gate.close()  # reconnect mid-GOP: the deltas of the new connection are junk until a key
    assert [gate.admit(video, key) for video, key in frames] == [False, False, True, True, True]


def test_a_keyframe_less_start_passes_nothing_until_the_first_keyframe() -> None:
    """A camera that never sent a keyframe yet (or only audio): nothing starts."""
    gate = KeyframeGate()
    assert not any(gate.admit(video, False) for video in (True, True, False, True))
    assert not gate.admit(False, True), "an audio frame is no picture to start from"
    assert gate.admit(True, True) and gate.is_open


def test_interleave_merges_by_decode_time_video_first_on_a_tie() -> None:
    video = [("v", t) for t in (0, 40, 80, 120)]
    audio = [("a", t) for t in (0, 21, 42, 64, 85, 106, 128)]
    merged = list(interleave(video, audio, key=lambda frame: frame[1]))
    assert merged[:3] == [("v", 0), ("a", 0), ("a", 21)]
    assert [t for _, t in merged] == sorted(t for _, t in merged)
    assert sorted(merged) == sorted(video + audio), "nothing lost or doubled"
    assert interleave(video, [], key=lambda frame: frame[1]) is video, "video only: as is"
    assert list(interleave([], audio, key=lambda frame: frame[1])) == audio
    # a list out of order (B-frames without DTS) is taken as it comes, not sorted
    reordered = [("v", 0), ("v", 120), ("v", 40), ("v", 80)]
    merged = list(interleave(reordered, [("a", 50)], key=lambda frame: frame[1]))
    assert [f for f in merged if f[0] == "v"] == reordered


def test_rebase_starts_at_the_anchor_and_keeps_composition_offsets() -> None:
    rebase = Rebase()
    assert rebase.map(5 * SECOND, None) is None  # not anchored yet
    # B-frames: decode order I P B B, the I-frame's DTS is one frame before its PTS
    frames = [(1000 * MS + 2 * FRAME, 1000 * MS), (1000 * MS + 5 * FRAME, 1000 * MS + FRAME),
              (1000 * MS + 3 * FRAME, 1000 * MS + 2 * FRAME),
              (1000 * MS + 4 * FRAME, 1000 * MS + 3 * FRAME)]
    rebase.anchor(decode_time(*frames[0]))
    mapped = [rebase.map(pts, dts) for pts, dts in frames]
    assert mapped == [(2 * FRAME, 0), (5 * FRAME, FRAME), (3 * FRAME, 2 * FRAME),
                      (4 * FRAME, 3 * FRAME)]
    assert all(pts >= dts for pts, dts in mapped), "PTS never before DTS"


def test_rebase_drops_what_decodes_before_the_anchor_and_maps_onto_an_origin() -> None:
    rebase = Rebase()
    rebase.anchor(10 * SECOND, out_ns=3 * SECOND)
    assert rebase.map(10 * SECOND - FRAME, None) is None  # audio ahead of the first picture
    assert rebase.map(10 * SECOND + FRAME, None) == (3 * SECOND + FRAME, None)
    rebase.reset()
    assert not rebase.anchored and rebase.map(11 * SECOND, None) is None


def test_jumps_forward_and_backward_but_not_stalls_bursts_or_drift() -> None:
    detector = JumpDetector(tolerance_ns=2 * SECOND)
    arrival = decode = 0
    assert detector.check(decode, arrival) is None
    # steady, then a burst (late frames arriving together), then a 10 s stall: no jump
    for _ in range(50):
        decode += FRAME
        arrival += FRAME
        assert detector.check(decode, arrival) is None
    for _ in range(5):
        decode += FRAME
        assert detector.check(decode, arrival) is None
    arrival += 10 * SECOND
    decode += 10 * SECOND
    assert detector.check(decode, arrival) is None
    # drift: the camera's clock 1 % fast for 10 minutes, judged frame by frame
    for _ in range(15_000):
        decode += FRAME * 101 // 100
        arrival += FRAME
        assert detector.check(decode, arrival) is None
    # +300 s in one frame (an RTP clock jump), then -5 s
    decode += 300 * SECOND
    arrival += FRAME
    assert detector.check(decode, arrival) == 300 * SECOND - FRAME
    decode -= 5 * SECOND
    arrival += FRAME
    assert detector.check(decode, arrival) == -5 * SECOND - FRAME
    decode += FRAME
    arrival += FRAME
    assert detector.check(decode, arrival) is None, "it judges from the new time on"


def test_continuous_timeline_runs_on_through_reconnects_and_jumps() -> None:
    timeline = ContinuousTimeline()
    outs = [timeline.place(90 * SECOND + i * FRAME) for i in range(3)]
    assert outs == [0, FRAME, 2 * FRAME]
    # the camera reconnects: its clock starts from 0 again; output continues after the last
    timeline.reanchor()
    assert timeline.place(0) == 3 * FRAME
    # a wrap without a reconnect (time goes back by an hour): detected, continues
    assert timeline.place(-3600 * SECOND) == 4 * FRAME
    # forward by a minute: re-anchored as well
    assert timeline.place(-3600 * SECOND + 60 * SECOND) == 5 * FRAME
    assert timeline.frame_ns == FRAME


def test_bridge_carries_a_track_across_jumps_without_losing_or_reordering_frames() -> None:
    """B-frames (DTS/PTS pairs) with a +300 s jump, then a -300 s one: the shifted decode
    times keep increasing one frame apart, composition offsets stay, nothing is dropped."""
    bridge = Bridge()
    pattern = [(0, 2), (1, 5), (2, 3), (3, 4)]  # (dts, pts) in frames, decode order
    frames, arrival = [], 0
    for gop in range(6):
        jump = 300 * SECOND if gop in (2, 3) else 0  # the clock jumps for two GOPs, back after
        for dts, pts in pattern:
            base = (gop * 4 + dts) * FRAME + jump
            frames.append((base, base - dts * FRAME + pts * FRAME, arrival))
            arrival += FRAME
    out = []
    for dts, pts, when in frames:
        shift = bridge.adjust(dts, when)
        out.append((dts + shift, pts + shift))
    dts_out = [d for d, _ in out]
    assert dts_out == [i * FRAME for i in range(len(frames))], "one frame apart, through both"
    assert [p - d for d, p in out] == [p - d for d, p, _ in frames], "offsets kept"
    assert bridge.jumps == 2


def test_bridge_never_repeats_a_decode_time() -> None:
    """Around a jump with B-frames the codec timestamper can hand two frames the same decode
    time (or one a fraction of a millisecond on): it is moved a millisecond on, and so is
    everything after (not counted as a jump)."""
    bridge = Bridge()
    out = []
    for index, dts in enumerate([0, FRAME, 2 * FRAME, 2 * FRAME, 2 * FRAME + 100, 3 * FRAME]):
        out.append(dts + bridge.adjust(dts, index * FRAME))
    assert out == [0, FRAME, 2 * FRAME, 2 * FRAME + MS, 2 * FRAME + 2 * MS,
                   3 * FRAME + 2 * MS - 100]
    assert bridge.jumps == 0


def test_bridge_ignores_stalls_and_drift() -> None:
    bridge = Bridge()
    decode = arrival = 0
    for index in range(500):
        step = 10 * SECOND if index == 100 else FRAME  # a 10 s stall: times moved on as well
        decode += step * 101 // 100  # 1 % fast
        arrival += step
        assert bridge.adjust(decode, arrival) == 0
    assert bridge.jumps == 0


def test_wall_clock_follows_a_drifting_camera_within_its_tolerance() -> None:
    clock = WallClock(tolerance_s=1.0)
    clock.anchor(1000.0)
    assert clock.wall_of(10 * SECOND) == 1010.0
    corrections = []
    for second in range(1, 301):  # the camera's clock 1 % fast: its 303 s are our 300
        wall = 1000.0 + second
        corrections.append(clock.observe(second * SECOND * 101 // 100, wall))
        assert abs(clock.wall_of(second * SECOND * 101 // 100) - wall) <= 1.0
    made = [c for c in corrections if c is not None]
    assert len(made) == 2 and all(-1.1 < c < -1.0 for c in made)


def _pyramid(clock: RtpClock, frames: int, drift: float, wobble_ms: int = 30,
             start: int = 1_000_000) -> tuple[dict[int, int], int]:
    """A B-pyramid camera (RTP times in decode order: I P B B per 4 frames) whose clock runs
    `drift` fast, with a reference (the jitter buffer's time) that wobbles by tens of ms:
    each frame's time, and the largest distance from real time in the second half."""
    wobble = [0, 30, -25, 12, -30, 5, 28, -10, 17, -3, -21]
    times: dict[int, int] = {}
    worst = 0
    for index in range(frames):
        group, slot = divmod(index, 4)
        frame = group * 4 + (0, 3, 1, 2)[slot]
        rtp = (start + frame * 3600) & 0xFFFFFFFF
        real = int(frame * FRAME / (1 + drift))
        reference = real + wobble[index % len(wobble)] * wobble_ms // 30 * MS
        times[frame] = clock.pts(rtp, reference)
        assert clock.pts(rtp, reference + MS) == times[frame], "one time per frame"
        if index > frames // 2:
            worst = max(worst, abs(times[frame] - real))
    return times, worst


def _steps(times: dict[int, int]) -> list[int]:
    ordered = [times[frame] for frame in sorted(times)]
    return [b - a for a, b in itertools.pairwise(ordered)]


TICK_NS = SECOND // 90_000


@pytest.mark.parametrize("drift", [0.0, 100e-6, -100e-6])
def test_rtp_clock_keeps_the_cameras_steps_to_the_tick_and_follows_its_drift(drift) -> None:
    """An hour of a camera 100 ppm fast or slow (a common crystal), or exact: every display
    interval is the camera's 40 ms within one 90 kHz tick, B-frames never reorder, and the
    times stay within 10 ms of real time (the recording index, the restream's clock)."""
    clock = RtpClock(90_000)
    times, worst = _pyramid(clock, 90_000 if drift else 10_000, drift)
    steps = _steps(times)[1:]  # the first frame is where the reference wobbled to
    assert all(abs(step - FRAME) <= TICK_NS for step in steps), (min(steps), max(steps))
    assert worst < 10 * MS and clock.jumps == []


def test_rtp_clock_catches_up_with_a_camera_far_off_and_counts_a_jump() -> None:
    """2 % fast: followed (within 0.35 s, no jump counted); then the RTP clock leaping 300 s
    the reference did not take is one jump."""
    clock = RtpClock(90_000)
    times, worst = _pyramid(clock, 3000, 0.02)
    assert worst < 350 * MS and clock.jumps == []
    last = max(times)
    clock.pts((1_000_000 + (last + 1) * 3600 + 300 * 90_000) & 0xFFFFFFFF,
              int((last + 1) * FRAME / 1.02))
    assert len(clock.jumps) == 1 and abs(clock.jumps[0] - 300 * SECOND) < SECOND


def test_rtp_clock_unwraps_the_32_bit_timestamp() -> None:
    clock = RtpClock(90_000)
    start = (1 << 32) - 2 * 3600
    got = [clock.pts((start + i * 3600) & 0xFFFFFFFF, 10 * SECOND + i * FRAME) for i in range(5)]
    assert [b - a for a, b in itertools.pairwise(got)] == [FRAME] * 4
