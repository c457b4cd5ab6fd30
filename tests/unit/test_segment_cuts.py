"""Where segments end, with hand-made keyframe times: at the first keyframe at or after each
segment's start + segment_duration, within the tolerance for timestamp wobble."""

from __future__ import annotations

from streamwarden.recording.cuts import SPLIT_TOLERANCE_NS, SegmentCuts

MS = 1_000_000
SECOND = 1000 * MS


def cuts_for(keyframes: list[int], segment_s: float) -> list[int]:
    """Running times of the keyframes that open a new segment (the first one included)."""
    cuts = SegmentCuts(int(segment_s * SECOND))
    opened, target = [], None
    for key in keyframes:
        if target is None or key >= target:
            opened.append(key)
        asked = cuts.keyframe(key)
        if asked is not None:
            target = asked
    return opened


def test_first_keyframe_sets_the_first_target_and_only_reaching_it_moves_it():
    cuts = SegmentCuts(10 * SECOND)
    assert cuts.keyframe(0) == 10 * SECOND - SPLIT_TOLERANCE_NS
    assert cuts.keyframe(2 * SECOND) is None
    assert cuts.keyframe(8 * SECOND) is None
    assert cuts.keyframe(10 * SECOND) == 20 * SECOND - SPLIT_TOLERANCE_NS


def test_a_two_second_gop_gives_ten_second_files_not_eight_or_twelve():
    keys = [i * 2 * SECOND for i in range(16)]
    assert cuts_for(keys, 10) == [0, 10 * SECOND, 20 * SECOND, 30 * SECOND]
    # a keyframe a few ms early at the boundary still cuts there (jitter), not 2 s later
    wobbly = [k - (3 * MS if k == 10 * SECOND else 0) for k in keys]
    assert cuts_for(wobbly, 10)[1] == 10 * SECOND - 3 * MS
    # one more than the tolerance early is before the boundary: the cut waits for the next
    early = [k - (SPLIT_TOLERANCE_NS + MS if k == 10 * SECOND else 0) for k in keys]
    assert cuts_for(early, 10)[1] == 12 * SECOND


def test_a_gop_that_does_not_divide_the_segment_rounds_up():
    keys = [round(i * 1.5 * SECOND) for i in range(10)]  # 20 fps, GOP 30
    assert cuts_for(keys, 2) == [0, 3 * SECOND, 6 * SECOND, 9 * SECOND, 12 * SECOND]


def test_a_pre_roll_burst_plans_every_cut_before_the_frames_reach_the_muxer():
    """The ring replays seconds of frames at once: each keyframe is judged by its running
    time, not by when it is pushed, so the bursts give the same cuts as real time."""
    keys = [i * SECOND for i in range(7)]
    assert cuts_for(keys, 3) == [0, 3 * SECOND, 6 * SECOND]


def test_a_segment_shorter_than_the_tolerance_never_asks_for_a_cut_before_zero():
    cuts = SegmentCuts(50 * MS)
    assert cuts.keyframe(0) == 0
