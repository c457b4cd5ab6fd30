"""The recording policy on a fake clock with hand-made frames: no pipeline, no sleep.

`Sim` plays the recorder's part the simplest way: frames go into a real pre-event ring, the
policy's answers are carried out, and a "session" is the list of frames it was given, starting
at a keyframe as session.py's KeyframeGate makes it. So each test reads as what a recording
holds after a camera and a user did something.
"""

from __future__ import annotations

import pytest

from streamwarden.media.timeline import KeyframeGate
from streamwarden.recording.outage import MAX_RETRY_S, RETRY_S, SPACE_CHECK_S, resume_threshold
from streamwarden.recording.policy import (
    NO_CAPS_RETRY_S,
    PUSH,
    ROTATE,
    SKIP,
    Action,
    Do,
    RecordingPolicy,
    Request,
    start_point,
)
from streamwarden.recording.ring import Entry, PrerollRing, Rule, StartAt
from tests.unit.frames import WALL_OFFSET, FakeCamera


class Sim:
    def __init__(self, buffer_duration: float = 10.0, gop: int = 25):
        self.ring = PrerollRing(buffer_duration)
        self.camera = FakeCamera(self.ring, gop=gop)
        self.policy = RecordingPolicy(buffer_duration)
        self.sessions: list[list[int]] = []  # frame numbers each session was given
        self._gate = KeyframeGate()
        self._caps: str | None = None
        self.rotations = 0
        self.reports: list[Action] = []
        self.announced: list[str | None] = []

    @property
    def now(self) -> float:
        return self.camera.now

    @property
    def wall(self) -> float:
        return self.camera.now + WALL_OFFSET

    # the recorder's frame path
    def frames(self, seconds: float) -> None:
        for _ in range(round(seconds * self.camera.fps)):
            previous, entry = self._caps, self.camera.video()
            self._caps = entry.caps
            todo = self.policy.video_frame(entry.seq, previous is None,
                                           previous is not None and previous != entry.caps)
            if todo == PUSH:
                self._push(entry)
            elif todo == ROTATE:
                self.rotations += 1
                self.apply(self.policy.rotate())  # the GStreamer thread, a moment later

    def _push(self, entry: Entry) -> None:
        if self._gate.admit(entry.kind == "video", entry.keyframe):
            self.sessions[-1].append(entry.buffer)

    # the recorder's control path
    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            if action.do is Do.OPEN:
                self.sessions.append([])
                self._gate = KeyframeGate()
                index = self.ring.index_of(action.start)
                if index is not None:
                    for entry in self.ring.from_index(index):
                        self._push(entry)
                self.policy.opened()
            elif action.do is Do.STOP:
                self.apply(self.policy.stop(self.wall, None))
            elif action.do is Do.REPORT:
                self.reports.append(action)
            elif action.do is Do.ANNOUNCE:
                self.announced.append(action.reason)

    def start(self, reason: str = "manual", **kwargs: float) -> None:
        self.apply(self.policy.start(self.now, reason, **kwargs))

    def tick(self) -> None:
        self.apply(self.policy.tick(self.now, self.wall))

    def run(self, seconds: float, tick_every: float = 0.2) -> None:
        """Frames and ticks, as the pump (a batch every 0.2 s) and the GStreamer thread
        interleave them."""
        for _ in range(round(seconds / tick_every)):
            self.frames(tick_every)
            self.tick()


def doing(actions: list[Action]) -> list[Do]:
    return [action.do for action in actions]


def is_keyframe_number(number: int, gop: int = 25) -> bool:
    return number % gop == 0


# ---- start, pre-roll, keyframes ------------------------------------------------------------


def test_start_with_pre_roll_replays_the_ring_from_the_keyframe_before():
    sim = Sim(gop=25)
    sim.frames(8.48)  # frames 0..211 (a keyframe every second), now = 8.48 s
    sim.start(pre_roll=3.0)
    assert sim.announced == ["manual"]
    [session] = sim.sessions
    assert session[0] == 125, "the keyframe at or before now - 3 s (5.48 s → 5 s)"
    sim.frames(1)
    assert session == list(range(125, 237)), "replay then live, nothing lost or doubled"


def test_pre_roll_longer_than_the_ring_starts_at_its_oldest_keyframe():
    sim = Sim(buffer_duration=4.0, gop=25)
    sim.frames(20)
    assert sim.policy.start(sim.now, "event", pre_roll=60.0)[1].start == StartAt(
        Rule.AT_OR_BEFORE, sim.now - 4.0), "pre-roll capped at the ring's duration"
    sim.policy.request = None
    sim.start(pre_roll=60.0)
    first = sim.sessions[0][0]
    assert first == 400 and is_keyframe_number(first), "the keyframe at or before now - 4 s"
    assert sim.ring.entries[0].buffer == 375, "(the ring may hold up to a GOP more)"
    assert sim.sessions[0] == list(range(400, 500))


def test_start_without_pre_roll_begins_at_the_next_keyframe_never_mid_gop():
    sim = Sim(gop=25)
    sim.frames(2.4)  # the request comes 10 frames into a GOP
    sim.start()
    assert sim.sessions == [[]], "no keyframe after the request yet: nothing"
    sim.frames(1)
    assert sim.sessions[0][0] == 75 and sim.sessions[0] == list(range(75, 85))


def test_a_keyframe_less_camera_records_nothing_until_its_first_keyframe():
    sim = Sim(gop=25)
    sim.camera.reconnect(mid_gop_at=3)  # the camera's first frames are deltas
    sim.start()
    sim.frames(0.8)  # 20 deltas: in the ring only, and no session content
    assert sim.sessions == [[]] and len(sim.ring.entries) == 20
    sim.frames(0.2)  # frames 20..24; the camera's first keyframe is frame 22
    assert sim.sessions[0] == [22, 23, 24]
    assert sim.ring.entries[0].buffer == 22, "the ring dropped the deltas before it"


def test_no_caps_yet_defers_the_session_briefly():
    policy = RecordingPolicy(10)
    actions = policy.start(100.0, "continuous")
    assert doing(actions) == [Do.ANNOUNCE, Do.OPEN]
    policy.deferred(100.0)  # the recorder had no caps to build a session from
    assert policy.tick(100.0 + NO_CAPS_RETRY_S / 2, 0) == []
    [retry] = policy.tick(100.0 + NO_CAPS_RETRY_S, 0)
    assert retry.do is Do.OPEN and retry.start == StartAt(Rule.ARRIVED_SINCE, 100.0), \
        "the first session still begins at the request: nothing since then is lost"


# ---- extend, timed recordings, stop ---------------------------------------------------------


def test_extend_moves_the_end_later_never_earlier_and_open_ended_wins():
    policy = RecordingPolicy(10)
    assert doing(policy.start(0.0, "event", duration=5.0)) == [Do.ANNOUNCE, Do.OPEN]
    policy.opened()
    assert policy.start(1.0, "event", post_roll=2.0) == [], "no second session"
    assert policy.request.until == 5.0, "3 s is earlier than 5 s: unchanged"
    policy.start(4.0, "event", post_roll=3.0)
    assert policy.request.until == 7.0 and policy.request.reason == "event"
    policy.start(5.0, "manual")  # a user's open-ended start during an event recording
    assert policy.request.until is None and policy.request.reason == "manual"
    policy.start(6.0, "event", duration=1.0)
    assert policy.request.until is None, "an event never ends an open-ended recording"
    assert Do.STOP not in doing(policy.tick(100.0, 0))


def test_a_timed_recording_stops_itself_at_its_end():
    sim = Sim(gop=25)
    sim.frames(1)
    sim.start("event", duration=2.0)
    sim.run(1.8)
    assert sim.policy.recording
    sim.run(0.4)
    assert not sim.policy.recording and sim.announced == ["event", None]
    frames = len(sim.sessions[0])
    sim.run(2)
    assert len(sim.sessions[0]) == frames, "nothing after the stop"


def test_stop_during_post_roll_ends_at_once_and_nothing_reopens():
    sim = Sim(gop=25)
    sim.frames(3)
    sim.start("event", pre_roll=1.0, post_roll=5.0)
    sim.run(1)
    actions = sim.policy.stop(sim.wall, sim.wall - 1)
    assert doing(actions) == [Do.FINISH, Do.ANNOUNCE]
    assert actions[-1].reason is None
    stopped_at = len(sim.sessions[0])
    sim.run(10)
    assert len(sim.sessions) == 1 and len(sim.sessions[0]) == stopped_at
    assert sim.policy.stop(sim.wall, None) == [], "stopping when stopped: nothing"
    sim.start("event", post_roll=1.0)
    assert len(sim.sessions) == 2, "a new request after the stop opens a new session"


# ---- rotation -------------------------------------------------------------------------------


def test_reconnect_mid_gop_rotates_at_the_new_connections_first_keyframe():
    sim = Sim(gop=25)
    sim.frames(1)
    sim.start("continuous")
    sim.frames(3.4)  # the first session: frames 25..109
    sim.policy.stream_started()
    sim.camera.reconnect(mid_gop_at=15)  # new connection, first frame 15 frames into a GOP
    sim.frames(1)
    assert sim.rotations == 1 and len(sim.sessions) == 2
    first, second = sim.sessions
    assert first == list(range(25, 110)), "the old stream's frames end the first file"
    assert second == list(range(120, 135)), "the new one starts at its first keyframe"


def test_new_caps_rotate_and_the_first_caps_ever_do_not():
    sim = Sim(gop=25)
    sim.policy.stream_started()  # the very first connection is no change
    sim.start("continuous")
    sim.frames(2)
    assert sim.rotations == 0 and len(sim.sessions) == 1
    sim.camera.reconnect(mid_gop_at=0, caps="320x240")  # same connection, new resolution
    sim.frames(1)
    assert sim.rotations == 1
    assert sim.sessions[0] == list(range(0, 50)) and sim.sessions[1] == list(range(50, 75))


def test_rotation_at_a_segment_boundary_loses_and_doubles_nothing():
    """The change lands exactly on a keyframe: the next session starts with that very frame."""
    sim = Sim(gop=25)
    sim.start("continuous")
    sim.frames(4)  # the boundary: frame 100 is a keyframe
    sim.policy.stream_started()
    sim.frames(2)
    first, second = sim.sessions
    assert first[-1] == 99 and second[0] == 100 and second == list(range(100, 150))


def test_frames_wait_in_the_ring_while_a_rotation_is_pending():
    policy = RecordingPolicy(10)
    policy.start(0.0, "continuous")
    policy.opened()
    assert policy.video_frame(0, True, False) == PUSH
    policy.stream_started()
    assert policy.video_frame(7, False, False) == ROTATE
    assert policy.rotate_from == 7
    assert policy.video_frame(8, False, True) == SKIP, "one rotation at a time"
    assert policy.audio_frame() == SKIP
    actions = policy.rotate()
    assert doing(actions) == [Do.FINISH, Do.OPEN]
    assert actions[1].start == StartAt(Rule.FROM_SEQ, 7)
    policy.opened()
    assert policy.rotate_from is None and policy.video_frame(9, False, False) == PUSH
    assert policy.audio_frame() == PUSH


def test_audio_that_turns_up_late_rotates_at_the_next_keyframe():
    """An MPEG-TS camera's audio comes a moment after its video: the session opened without
    an audio track keeps the video until the next keyframe, which opens one with audio."""
    policy = RecordingPolicy(10)
    policy.start(0.0, "continuous")
    policy.opened()
    assert policy.video_frame(0, True, False, keyframe=True) == PUSH
    assert policy.audio_frame(caps_changed=True) == SKIP, "no track for it in this session"
    assert policy.video_frame(1, False, False, keyframe=False) == PUSH, "video goes on"
    assert policy.audio_frame() == SKIP
    assert policy.video_frame(25, False, False, keyframe=True) == ROTATE
    actions = policy.rotate()
    assert actions[1].start == StartAt(Rule.FROM_SEQ, 25)
    policy.opened()
    assert policy.audio_frame() == PUSH and policy.video_frame(26, False, False) == PUSH


def test_not_recording_means_ring_only():
    policy = RecordingPolicy(10)
    policy.stream_started()
    assert policy.video_frame(0, False, True) == SKIP and policy.audio_frame() == SKIP
    assert not policy.discontinuity, "a change seen while idle is no change later"


# ---- failures, retries, outages --------------------------------------------------------------


def test_retry_after_a_failure_starts_from_the_outage_in_the_ring():
    sim = Sim(gop=25)
    sim.frames(1)
    sim.start("continuous")
    sim.run(3)
    session_start = sim.wall - 3
    last = sim.wall - 0.04
    actions = sim.policy.failed(sim.now, sim.wall, True, "write_error", last, session_start,
                                "Could not write to resource.")
    [report] = actions
    assert report.change.started.reason == "write_error" and report.change.started.start == last
    assert report.message == "Could not write to resource."
    assert not sim.policy.session_open
    sim.run(RETRY_S - 0.2)
    assert len(sim.sessions) == 1, "no retry before the back-off"
    sim.run(0.2)
    assert len(sim.sessions) == 2
    second = sim.sessions[1]
    assert is_keyframe_number(second[0]) and second[0] < sim.camera.number - 25, \
        "the retry replays the ring from the outage's start (its keyframe after it)"
    [ended] = sim.policy.written(sim.wall - RETRY_S)
    gap = ended.change.ended
    assert gap.reason == "write_error" and gap.start == last and gap.end == sim.wall - RETRY_S


def test_one_outage_holds_through_failed_retries_and_backs_off():
    policy = RecordingPolicy(10)
    policy.start(0.0, "continuous")
    policy.opened()
    now, wall = 10.0, 1e9
    reports, delays = [], []
    for _ in range(6):
        reports += policy.failed(now, wall, True, "write_error", wall - 1, wall - 5, "boom")
        delays.append(policy.retry_at - now)
        assert policy.tick(policy.retry_at - 0.01, wall) == [Action(Do.CHECK_WRITTEN)]
        now = policy.retry_at
        wall += delays[-1]
        assert doing(policy.tick(now, wall))[0] is Do.OPEN
        policy.opened()
    assert len(reports) == 1, "reported once, not per retry"
    assert delays == [RETRY_S, 2 * RETRY_S, 4 * RETRY_S, MAX_RETRY_S, MAX_RETRY_S, MAX_RETRY_S]
    assert policy.outages.error == "write_error"
    [ended] = policy.written(wall)
    assert ended.change.error is None and ended.change.previous == "write_error"


def test_a_full_disk_refuses_sessions_until_there_is_room_for_a_few_seconds():
    policy = RecordingPolicy(10)
    assert policy.space_needed(None, 1e6) is None and policy.space_needed(5000, 1e6) == 5000
    policy.start(0.0, "continuous")
    [report] = policy.refused(0.0, 1e9, "not enough free space on /rec")
    assert report.change.started.reason == "disk_full"
    assert policy.space_needed(None, 1e6) == resume_threshold(None, 1e6) == 5_000_000
    assert policy.refused(SPACE_CHECK_S, 1e9 + 0.5, "again") == [], "the same outage"
    assert policy.tick(SPACE_CHECK_S * 1.5, 1e9 + 0.75) == [Action(Do.CHECK_WRITTEN)]
    opens = policy.tick(SPACE_CHECK_S * 2, 1e9 + 1)
    assert doing(opens) == [Do.OPEN] and opens[0].start.rule is Rule.ARRIVED_SINCE, \
        "never opened yet: the first session still begins at the request"
    policy.opened()
    [ended] = policy.written(1e9 + 1)
    assert ended.change.ended.seconds == pytest.approx(1.0)
    assert policy.space_needed(None, 1e6) is None, "after the outage: min_free only"


def test_heartbeats_only_during_an_outage():
    policy = RecordingPolicy(10)
    policy.start(0.0, "continuous")
    policy.refused(0.0, 1000.0, "full")
    beats = [t for t in range(1, 31)
             if Do.HEARTBEAT in doing(policy.tick(float(t), 1000.0 + t))]
    assert beats == [10, 20, 30]
    policy.stop(1031.0, None)
    assert policy.tick(50.0, 1050.0) == []


def test_a_failure_after_stop_is_no_outage():
    policy = RecordingPolicy(10)
    policy.start(0.0, "manual")
    policy.opened()
    policy.stop(10.0, 5.0)
    assert policy.failed(1.0, 11.0, False, "write_error", 10.0, 5.0, "late") == []
    assert policy.outages.error is None


def test_stopping_during_an_outage_ends_it_where_the_resumed_session_began():
    policy = RecordingPolicy(10)
    policy.start(0.0, "manual")
    policy.opened()
    policy.failed(1.0, 101.0, True, "disk_full", 100.5, 90.0, "full")
    policy.opened()  # a retry opened, its first frame at 104
    actions = policy.stop(110.0, 104.0)
    assert doing(actions) == [Do.FINISH, Do.REPORT, Do.ANNOUNCE]
    assert actions[1].change.ended.end == 104.0
    policy.start(200.0, "manual")
    policy.refused(200.0, 300.0, "full")
    actions = policy.stop(305.0, None)
    assert actions[0].change.ended.end == 305.0, "no session: the outage ends at the stop"


def test_lost_seconds_count_up_to_where_recording_could_resume():
    policy = RecordingPolicy(10)
    policy.start(0.0, "manual")
    policy.failed(1.0, 100.0, False, "write_error", 100.0, None, "x")
    assert policy.lost_seconds(130.0, None, lambda wall: None) == {"write_error": 30.0}
    assert policy.lost_seconds(130.0, None, lambda wall: wall + 2) == {"write_error": 2.0}
    assert policy.lost_seconds(130.0, 120.0, lambda wall: wall + 2) == {"write_error": 20.0}


def test_nothing_opens_after_the_input_ended():
    policy = RecordingPolicy(10)
    policy.ended()
    assert doing(policy.start(0.0, "continuous")) == [Do.ANNOUNCE]
    assert policy.tick(5.0, 0) == []


def test_start_point_rules():
    request = Request("manual", requested_at=50.0, pre_roll=5.0, until=None)
    assert start_point(request) == StartAt(Rule.AT_OR_BEFORE, 45.0)
    assert start_point(request, outage_start=1e9) == StartAt(Rule.AT_OR_BEFORE, 45.0), \
        "a first session keeps its pre-roll, even after a refusal"
    assert start_point(request, from_seq=9) == StartAt(Rule.FROM_SEQ, 9)
    request.opened = True
    assert start_point(request, outage_start=1e9) == StartAt(Rule.WALL_SINCE, 1e9)
    assert start_point(request) is None, "otherwise: the next keyframe to arrive"
