"""Cut and empty segments made honest in the index: real MP4 files, real SQLite, the real API.

The files are muxed (not encoded) from the cached test clip, the way a recording session
writes them: fragmented MP4, one fragment a second. A cut is a file truncated part-way.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from streamwarden.config.model import AppSection, Config, RecordingSection
from streamwarden.db import Database
from streamwarden.demo.clip import ClipSpec, load_clip
from streamwarden.demo.stamp import read_stamps, stamp_access_unit
from streamwarden.gst.init import Gst
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.index import RecordingIndex
from streamwarden.recording.layout import segment_path
from streamwarden.recording.outage import Gap
from streamwarden.recording.probe import playable_duration, played_seconds
from streamwarden.recording.reconcile import reconcile

CLIP = ClipSpec()  # 4 s, 25 fps, the cameras' clip
T0 = time.time() - 3600


def write_mp4(path: Path, frames: int | None = None) -> Path:
    """The clip (or its first `frames`) as a fragmented MP4, 1 s fragments, like a session's,
    each frame stamped with its number as the cameras do."""
    clip = load_clip(CLIP)
    units = clip.video[:frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    pipeline = Gst.parse_launch(
        f'appsrc name=src format=time caps="{clip.video_caps}" ! h264parse ! '
        f"mp4mux fragment-duration=1000 ! filesink location={path}")
    src = pipeline.get_by_name("src")
    pipeline.set_state(Gst.State.PLAYING)
    for n, unit in enumerate(units):
        buffer = Gst.Buffer.new_wrapped(stamp_access_unit(CLIP.codec, unit.data, n))
        buffer.pts = buffer.dts = n * unit.duration_ns
        buffer.duration = unit.duration_ns
        if not unit.keyframe:
            buffer.set_flags(Gst.BufferFlags.DELTA_UNIT)
        src.emit("push-buffer", buffer)
    src.emit("end-of-stream")
    message = pipeline.get_bus().timed_pop_filtered(
        10 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    assert message is not None and message.type == Gst.MessageType.EOS
    return path


def cut(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def frames_in(path: Path) -> int:
    return len(read_stamps(path.read_bytes()))


def test_played_seconds_measures_a_cut_file_where_the_header_would_not(tmp_path):
    whole = write_mp4(tmp_path / "whole.mp4")
    assert played_seconds(whole) == pytest.approx(4.0, abs=0.05)
    truncated = cut(write_mp4(tmp_path / "cut.mp4"), 0.6)
    played = played_seconds(truncated)
    assert played == pytest.approx(frames_in(truncated) / CLIP.fps, abs=0.1)
    assert 1.0 < played < 3.5
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video\n" * 100)
    for unplayable in ("empty.mp4", "text.mp4", "missing.mp4"):
        assert played_seconds(tmp_path / unplayable) is None


@pytest.fixture
def emitted() -> list[dict]:
    return []


@pytest.fixture
def index(tmp_path, emitted):
    db = Database(tmp_path / "index.db")
    yield RecordingIndex(db, emit=emitted.append)
    db.close()


def opened(index: RecordingIndex, base: Path, start: float, *, frames: int | None = None,
           empty: bool = False) -> Path:
    path = segment_path(base, "cam", start, "mp4")
    if empty:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    else:
        write_mp4(path, frames)
    index.segment_opened("cam", path, start, "continuous")
    return path


def test_cut_and_empty_segments_are_settled_at_once(index, emitted, tmp_path):
    base = tmp_path / "rec"
    complete = opened(index, base, T0)
    index.segment_closed("cam", complete, T0 + 4.0)
    truncated = cut(opened(index, base, T0 + 4), 0.6)
    index.segment_closed("cam", truncated, T0 + 8.0, cut=True)
    empty_cut = opened(index, base, T0 + 8, empty=True)
    index.segment_closed("cam", empty_cut, T0 + 9.0, cut=True)
    empty_closed = opened(index, base, T0 + 9, empty=True)
    index.segment_closed("cam", empty_closed, T0 + 10.0)
    header_only = opened(index, base, T0 + 10)  # the write failed before a whole frame
    header_only.write_bytes(header_only.read_bytes()[:600])
    index.segment_closed("cam", header_only, T0 + 11.0, cut=True)

    rows = {Path(r.path): r for r in index.db.call(index.db.recordings)}
    assert set(rows) == {complete, truncated}
    assert not any(p.exists() for p in (empty_cut, empty_closed, header_only))
    assert rows[complete].status == "complete" and rows[complete].duration == pytest.approx(4)
    repaired = rows[truncated]
    assert repaired.status == "repaired" and repaired.bytes == truncated.stat().st_size
    assert repaired.duration == pytest.approx(frames_in(truncated) / CLIP.fps, abs=0.1)
    assert repaired.end_ts == pytest.approx(repaired.start_ts + repaired.duration)
    assert [e["recording_id"] for e in emitted] == [rows[complete].id, repaired.id]
    # what a segment_complete hook is told: where the segment is, its times and status
    assert [(e["path"], e["status"], e["start"], e["end"]) for e in emitted] == [
        (str(complete), "complete", T0, T0 + 4.0),
        (str(truncated), "repaired", repaired.start_ts, repaired.end_ts)]


def test_a_gap_begins_where_the_cut_session_really_stopped(index, tmp_path):
    base = tmp_path / "rec"
    first = opened(index, base, T0)
    index.segment_closed("cam", first, T0 + 4.0)
    truncated = cut(opened(index, base, T0 + 4), 0.6)
    index.segment_closed("cam", truncated, T0 + 7.9, cut=True)  # last frame handed over
    earlier: list[float] = []
    index.outage_started("cam", Gap("disk_full", T0 + 7.9, T0 + 7.9, T0))
    index.outage_ended("cam", Gap("disk_full", T0 + 7.9, T0 + 20, T0), earlier.append)
    [gap] = index.db.call(index.gaps.gaps, "cam")
    repaired = index.db.call(index.db.recording_by_path, str(truncated))
    assert gap.start_ts == pytest.approx(repaired.end_ts) and gap.end_ts == T0 + 20
    assert not gap.open and gap.reason == "disk_full"
    assert earlier == [pytest.approx(T0 + 7.9 - repaired.end_ts)] and earlier[0] > 1

    # Nothing of the session survived: the gap begins where the session began, no earlier.
    lost = opened(index, base, T0 + 100, empty=True)
    index.segment_closed("cam", lost, T0 + 101, cut=True)
    index.outage_ended("cam", Gap("disk_full", T0 + 101, T0 + 110, T0 + 100), earlier.append)
    assert index.db.call(index.gaps.gaps, "cam")[-1].start_ts == T0 + 100
    # An outage with no session (a recording refused from the start) keeps its start.
    index.outage_ended("cam", Gap("disk_full", T0 + 200, T0 + 210), earlier.append)
    assert index.db.call(index.gaps.gaps, "cam")[-1].start_ts == T0 + 200
    assert earlier[1:] == [1.0, 0.0]


def test_start_up_removes_empty_segments_and_keeps_a_crash_s_leftovers(tmp_path):
    db = Database(tmp_path / "index.db")
    base = tmp_path / "rec"
    good = write_mp4(segment_path(base, "cam", T0, "mp4"))
    db.call(db.insert_segment, "cam", str(good), T0, T0 + 4, good.stat().st_size,
            "continuous", "complete")
    empty = segment_path(base, "cam", T0 + 4, "mp4")
    empty.write_bytes(b"")
    db.call(db.insert_segment, "cam", str(empty), T0 + 4, T0 + 6, 0, "continuous", "complete")
    stray = segment_path(base, "cam", T0 + 6, "mp4")
    stray.write_bytes(b"")
    crashed = write_mp4(segment_path(base, "cam", T0 + 7, "mp4"))  # kill -9 before a frame
    crashed.write_bytes(crashed.read_bytes()[:600])
    db.call(db.segment_opened, "cam", str(crashed), T0 + 7, "continuous")
    report = db.call(reconcile, db, base)
    assert (report.removed, report.orphans, report.corrupt) == (2, 0, 1)
    rows = db.call(db.recordings)
    assert [(r.path, r.status) for r in rows] == [(str(good), "complete"),
                                                  (str(crashed), "corrupt")]
    assert not empty.exists() and not stray.exists() and crashed.exists()
    db.close()


def test_no_empty_200_and_open_gaps_closed_at_start_up(service_factory, tmp_path):
    db = Database(tmp_path / "index.db")
    store = GapStore(db)
    db.call(store.opened, "cam", T0, "disk_full")
    db.call(store.ongoing, "cam", T0 + 30)  # the service died during the outage after this
    db.close()
    config = Config(app=AppSection(database=str(tmp_path / "index.db")),
                    recording=RecordingSection(base_path=str(tmp_path / "rec")))
    svc = service_factory(config)
    service = svc.service
    [gap] = service.db.call(service.gaps.gaps, "cam")
    assert (gap.start_ts, gap.end_ts, gap.open) == (T0, T0 + 30, False)

    path = segment_path(tmp_path / "rec", "cam", time.time(), "mp4")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # a segment just opened: nothing written yet
    rec_id = service.db.call(service.db.segment_opened, "cam", str(path), time.time(),
                             "continuous")
    client = svc.client()
    response = client.get(f"/recordings/{rec_id}/file")
    assert response.status_code == 404 and response.json()["error"] == "no_data"
    write_mp4(path, frames=30)
    response = client.get(f"/recordings/{rec_id}/file")
    assert response.status_code == 200 and response.content == path.read_bytes()
    assert playable_duration(path)
