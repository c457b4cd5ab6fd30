"""The pre-event ring with hand-made frames: what it keeps, and where a session starts in it."""

from __future__ import annotations

from streamwarden.recording.ring import PrerollRing, Rule, StartAt
from tests.unit.frames import DELTA_BYTES, KEY_BYTES, T0, WALL_OFFSET, FakeCamera


def test_keeps_at_least_its_duration_from_a_keyframe():
    ring = PrerollRing(duration=3.0)
    camera = FakeCamera(ring, fps=25, gop=25)
    for _ in range(20 * 25):
        camera.video()
        assert ring.entries[0].keyframe, "the ring always begins with a keyframe"
        newest = ring.entries[-1].arrival
        if newest - T0 >= 3.0:
            assert newest - ring.entries[0].arrival >= 3.0 - 1e-9
        assert ring.span < 3.0 + 1.0, "never more than one GOP beyond the duration"
    assert ring.bytes == sum(e.size for e in ring.entries)


def test_frames_before_the_first_keyframe_are_dropped_once_one_arrives():
    """A camera that connects mid-GOP: its first deltas can never start a recording."""
    ring = PrerollRing(duration=10.0)
    camera = FakeCamera(ring, gop=25)
    camera.reconnect(mid_gop_at=10)
    deltas = camera.run(15 / 25)
    assert not any(e.keyframe for e in deltas) and ring.latest_keyframe() is None
    assert ring.start_index(camera.now) is None, "no keyframe: nothing to start from"
    key = camera.video()
    assert key.keyframe and ring.entries[0] is key


def test_byte_cap_trims_to_a_later_keyframe():
    ring = PrerollRing(duration=60.0, max_bytes=3 * (KEY_BYTES + 24 * DELTA_BYTES))
    camera = FakeCamera(ring, gop=25)
    camera.run(20)
    assert ring.bytes <= ring.max_bytes + KEY_BYTES + 24 * DELTA_BYTES
    assert ring.entries[0].keyframe and ring.span < 5


def test_zero_duration_keeps_nothing_but_numbers_frames():
    ring = PrerollRing(duration=0)
    camera = FakeCamera(ring)
    entries = camera.run(1)
    assert not ring.entries and [e.seq for e in entries] == list(range(25))


def test_start_points():
    ring = PrerollRing(duration=10.0)
    camera = FakeCamera(ring, fps=25, gop=50)  # a keyframe every 2 s
    camera.run(12)  # frames at T0 .. T0 + 11.96
    entries = list(ring.entries)
    # pre-roll: the keyframe at or before the moment (never a later one)
    index = ring.index_of(StartAt(Rule.AT_OR_BEFORE, T0 + 7.0))
    assert entries[index].keyframe and entries[index].arrival == T0 + 6.0
    # the first keyframe that arrived at or after a moment (monotonic or wall)
    index = ring.index_of(StartAt(Rule.ARRIVED_SINCE, T0 + 7.0))
    assert entries[index].arrival == T0 + 8.0
    index = ring.index_of(StartAt(Rule.WALL_SINCE, T0 + WALL_OFFSET + 8.0))
    assert entries[index].arrival == T0 + 8.0
    # a stream change at frame n: its first keyframe at or after it, n itself if it is one
    change = entries[-1].seq - 60
    index = ring.index_of(StartAt(Rule.FROM_SEQ, change))
    assert entries[index].seq >= change and entries[index].keyframe
    key_seq = next(e.seq for e in entries if e.keyframe and e.seq > change)
    assert ring.index_of(StartAt(Rule.FROM_SEQ, key_seq)) == key_seq - entries[0].seq
    # nothing that late yet: wait for the next keyframe; no start point: no replay
    assert ring.index_of(StartAt(Rule.ARRIVED_SINCE, camera.now)) is None
    assert ring.index_of(None) is None


def test_pre_roll_longer_than_the_ring_starts_at_its_oldest_keyframe():
    ring = PrerollRing(duration=4.0)
    camera = FakeCamera(ring, gop=25)
    camera.run(30)
    index = ring.index_of(StartAt(Rule.AT_OR_BEFORE, camera.now - 60))
    assert index == 0 and ring.entries[0].keyframe
    assert ring.from_index(index)[-1] is ring.entries[-1]


def test_audio_rides_along_and_the_rate_needs_half_a_second():
    ring = PrerollRing(duration=5.0)
    camera = FakeCamera(ring, gop=25)
    assert ring.bytes_per_second == 0.0
    for _ in range(10):
        camera.video()
        camera.audio()
    assert ring.bytes_per_second == 0.0, "under half a second: no rate yet"
    for _ in range(50):
        camera.video()
        camera.audio()
    assert [e.kind for e in list(ring.entries)[:2]] == ["video", "audio"]
    second = ring.bytes_per_second
    expected = (KEY_BYTES + 24 * DELTA_BYTES + 25 * 50) / 1.0
    assert 0.8 * expected < second < 1.3 * expected
    assert ring.first_keyframe_since(T0 + WALL_OFFSET + 0.5).arrival == T0 + 1.0
