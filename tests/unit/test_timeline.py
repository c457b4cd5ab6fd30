"""The timestamp rules, driven with hand-made frames: no GStreamer, no pipeline, no sleep."""

from __future__ import annotations

from streamwarden.media.timeline import (
    SECOND,
    ContinuousTimeline,
    JumpDetector,
    KeyframeGate,
    Rebase,
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
