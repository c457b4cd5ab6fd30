"""Recording against real RTSP cameras: segments, toggling, pre-roll, reconnects, the index."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from streamwarden.config.model import (
    AppSection,
    Config,
    RecordingSection,
    SourceSettings,
    StreamConfig,
)
from streamwarden.recording.recorder import Recorder
from streamwarden.recording.session import SPLIT_TOLERANCE_NS
from tests.conftest import state_of, wait_for
from tests.media import GOP, decodes_cleanly, discoverer_duration, ffprobe, recorded_files

FAST = SourceSettings(timeout=2, restart_timeout=1)


def recording_config(tmp_path: Path, streams: dict[str, str] | None = None, record=True,
                     **recording) -> Config:
    return Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), **recording),
        stream_defaults=FAST,
        streams=[StreamConfig(id=sid, uri=uri, enable_recording=record)
                 for sid, uri in (streams or {}).items()],
    )


def wait_streaming(client, sid: str) -> None:
    wait_for(lambda: state_of(client, sid)["health"]["state"] == "streaming", 20,
             message=f"{sid} streaming")


def test_continuous_segments_hold_every_frame(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()},
                                           segment_duration="5s"))
    client = svc.client()
    wait_streaming(client, "cam")
    assert client.get("/streams/cam").json()["recording"] is True
    wait_for(lambda: len(recorded_files(tmp_path / "rec", "cam")) >= 4, 30, interval=0.5,
             message="four segments opened")
    assert client.delete("/streams/cam").status_code == 204  # finalises the open segment

    files = [ffprobe(p) for p in recorded_files(tmp_path / "rec", "cam")]
    for info in files:
        assert info.codecs == {"h264"} and info.sizes == {(640, 360)}
        assert info.start_time < 0.1
        assert discoverer_duration(info.path), f"discoverer rejects {info.path}"
        assert info.sequences[0] % GOP == 0, "a segment must start on a keyframe"
    for info in files[:-1]:
        assert abs(info.duration - 5.0) <= 1.0, f"{info.path}: {info.duration}s"
    sequences = [seq for info in files for seq in info.sequences]
    assert sequences[0] == 0, "recording must begin with the camera's first frame"
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), \
        "frames lost or duplicated across segments"
    assert decodes_cleanly(files[0].path)

    rows = client.get("/recordings", params={"stream_id": "cam"}).json()
    assert len(rows) == len(files)
    assert all(r["status"] == "complete" and r["reason"] == "continuous" for r in rows)
    for row, info in zip(rows, files, strict=True):
        assert abs(row["duration"] - info.duration) < 0.5
        assert row["bytes"] == info.path.stat().st_size


@pytest.mark.parametrize(("fps", "gop", "clip_s", "segment", "expected"), [
    (20, 30, 3, "2s", 3.0),  # 1.5 s GOP: 2 s is reached at the keyframe at 3 s
    (25, 25, 4, "3s", 3.0),  # 1 s GOP: a keyframe falls on 3 s itself
])
def test_segments_last_at_least_segment_duration(camera_factory, service_factory, tmp_path,
                                                  fps, gop, clip_s, segment, expected):
    """Each segment ends at the first keyframe at or after segment_duration (never the last
    one before it, splitmuxsink's max-size-time rule), keyframe-clean, nothing lost."""
    camera = camera_factory(["/cam"], ["--fps", str(fps), "--gop", str(gop),
                                       "--seconds", str(clip_s)])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()},
                                           segment_duration=segment))
    client = svc.client()
    wait_streaming(client, "cam")
    wait_for(lambda: len(recorded_files(tmp_path / "rec", "cam")) >= 3, 20, interval=0.3,
             message="three segments opened")
    assert client.delete("/streams/cam").status_code == 204

    files = [ffprobe(p) for p in recorded_files(tmp_path / "rec", "cam")]
    # Frame counts are exact; durations carry the camera's timestamp jitter (the first frame
    # of a connection is often some tens of ms late), hence the session's 0.1 s tolerance.
    slack = SPLIT_TOLERANCE_NS / 1e9
    for info in files[:-1]:  # the last one ends where the recording stopped
        assert len(info.stamps) == round(expected * fps), f"{info.path}: {info.duration}s"
        assert expected - slack <= info.duration < expected + 1.0 / fps, \
            f"{info.path}: {info.duration}s"
    for info in files:
        assert info.sequences[0] % gop == 0, "a segment must start on a keyframe"
    sequences = [seq for info in files for seq in info.sequences]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), \
        "frames lost or duplicated across segments"


def test_toggle_twenty_times(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()}, record=False))
    client = svc.client()
    wait_streaming(client, "cam")
    windows = []
    for _ in range(20):
        started = time.time()
        assert client.post("/streams/cam/record").json()["recording"] is True
        assert client.post("/streams/cam/record").status_code == 200  # idempotent
        time.sleep(0.7)
        stopped = time.time()
        assert client.delete("/streams/cam/record").json()["recording"] is False
        windows.append((started, stopped))
        time.sleep(0.1)
    assert client.delete("/streams/cam/record").status_code == 200  # stop when stopped
    time.sleep(1)
    files = [ffprobe(p) for p in recorded_files(tmp_path / "rec", "cam")]
    assert len(files) >= 8, "most 0.7 s windows contain a keyframe of a 1 s GOP"
    for info in files:
        assert info.stamps, f"{info.path} holds no frames"
        assert info.sequences[0] % GOP == 0, f"{info.path} does not start on a keyframe"
        first, last = info.stamps[0].wall_time, info.stamps[-1].wall_time
        window = next((w for w in windows if w[0] - 0.3 <= first <= w[1]), None)
        assert window is not None, f"{info.path} starts outside every request window"
        assert last <= window[1] + 0.3, f"{info.path} runs past its stop request"
        assert discoverer_duration(info.path)


def test_pre_roll_reaches_back(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()}, record=False))
    client = svc.client()
    wait_streaming(client, "cam")
    time.sleep(7)  # let the pre-event buffer fill
    requested = time.time()
    body = {"pre_roll": "5s", "duration": "3s", "reason": "event"}
    assert client.post("/streams/cam/record", json=body).json()["recording"] is True
    wait_for(lambda: not state_of(client, "cam")["health"]["recording"], 8,
             message="event recording stops by itself")
    wait_for(lambda: client.get("/recordings").json() and
             client.get("/recordings").json()[0]["status"] == "complete", 5,
             message="segment closed")
    [path] = recorded_files(tmp_path / "rec", "cam")
    info = ffprobe(path)
    assert info.stamps[0].wall_time <= requested - 4.0
    assert info.stamps[-1].wall_time >= requested + 2.5
    assert client.get("/recordings").json()[0]["reason"] == "event"


def test_camera_restart_and_resolution_change_open_new_segments(camera_factory,
                                                                service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()}))
    client = svc.client()
    wait_streaming(client, "cam")
    time.sleep(2)
    camera.kill()
    camera.options = ["--width", "320", "--height", "240"]
    camera.start()
    wait_for(lambda: state_of(client, "cam")["health"]["retry_count"] >= 1
             and state_of(client, "cam")["health"]["state"] == "streaming", 15,
             message="reconnected")
    time.sleep(3)
    assert client.delete("/streams/cam").status_code == 204
    files = [ffprobe(p) for p in recorded_files(tmp_path / "rec", "cam")]
    assert len(files) >= 2
    assert files[0].sizes == {(640, 360)} and files[-1].sizes == {(320, 240)}
    for info in files:
        assert len(info.sizes) == 1
        assert info.start_time < 0.1
        assert info.sequences[0] % GOP == 0
        assert info.sequences == sorted(info.sequences)


def test_disk_full_then_recovery(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/a", "/b"])
    svc = service_factory(recording_config(tmp_path, {"a": camera.url("/a"),
                                                      "b": camera.url("/b")}))
    client = svc.client()
    wait_streaming(client, "a")
    wait_for(lambda: recorded_files(tmp_path / "rec", "a"), 10, message="first segment")
    recorder = svc.manager.get("a").consumer(Recorder)
    # a free-space floor above what the disk has: new segments are refused
    recorder.settings.min_free = 10**18
    assert client.delete("/streams/a/record").status_code == 200
    assert client.post("/streams/a/record").status_code == 200
    wait_for(lambda: state_of(client, "a")["health"]["recording_error"] == "disk_full", 5,
             message="disk_full reported")
    assert state_of(client, "b")["health"]["recording"] is True
    assert state_of(client, "a")["health"]["state"] == "streaming"
    recorder.settings.min_free = 1
    wait_for(lambda: state_of(client, "a")["health"]["recording_error"] is None, 6,
             message="recording resumed")
    wait_for(lambda: len(recorded_files(tmp_path / "rec", "a")) >= 2, 6,
             message="a new segment after recovery")


def test_recording_api_bad_input(service_factory, tmp_path):
    client = service_factory(recording_config(tmp_path)).client()
    assert client.post("/streams/nope/record").status_code == 404
    assert client.delete("/streams/nope/record").status_code == 404
    assert client.post("/streams/..%2F/record").status_code in (404, 422)
    bad = client.post("/streams", json={"id": "x", "uri": "rtsp://127.0.0.1:9/x"})
    assert bad.status_code == 201
    assert client.post("/streams/x/record", json={"pre_roll": "soon"}).status_code == 422
    assert client.post("/streams/x/record", json={"bogus": 1}).status_code == 422
    clip = client.get("/streams/x/clip", params={"start": "2026-01-01T00:00:10Z",
                                                  "end": "2026-01-01T00:00:00Z"})
    assert clip.status_code == 422 and clip.json()["error"] == "invalid_range"
    clip = client.get("/streams/x/clip", params={"start": "2020-01-01T00:00:00Z",
                                                  "end": "2020-01-01T00:01:00Z"})
    assert clip.status_code == 404 and "no recording between" in clip.json()["detail"]
    assert client.get("/recordings/999/file").status_code == 404
    assert client.get("/recordings/..%2F..%2Fetc%2Fpasswd/file").status_code in (404, 422)
    assert client.get("/recordings", params={"stream_id": "../x"}).status_code == 422
    assert client.get("/recordings", params={"start": "yesterday"}).status_code == 422


def test_range_errors_on_segments_and_clips(camera_factory, service_factory, tmp_path,
                                            monkeypatch):
    camera = camera_factory(["/cam"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()},
                                           segment_duration="1s"))
    client = svc.client()
    wait_streaming(client, "cam")
    row = wait_for(lambda: next((r for r in client.get("/recordings").json()
                                 if r["status"] == "complete"), None), 20,
                   message="a complete segment")
    size = row["bytes"]
    assert client.get(row["url"], headers={"Range": "bytes=0-99"}).status_code == 206
    bad = client.get(row["url"], headers={"Range": "bytes=x-y"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_range"
    beyond = client.get(row["url"], headers={"Range": f"bytes={size + 10}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["error"] == "range_not_satisfiable"

    scratch = tmp_path / "scratch"  # where the clip's temporary directory goes
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    params = {"start": row["start"], "end": row["end"]}
    clip = client.get("/streams/cam/clip", params=params, headers={"Range": "bytes=abc"})
    assert clip.status_code == 400 and set(clip.json()) == {"error", "detail"}
    clip = client.get("/streams/cam/clip", params=params, headers={"Range": "bytes=99999999-"})
    assert clip.status_code == 416 and clip.json()["error"] == "range_not_satisfiable"
    assert client.get("/streams/cam/clip", params=params).status_code == 200
    wait_for(lambda: not any(scratch.iterdir()), 5, message="clip directories removed")


@pytest.mark.slow
def test_clip_across_segments_and_range_download(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()},
                                           segment_duration="3s"))
    client = svc.client()
    wait_streaming(client, "cam")
    wait_for(lambda: len([r for r in client.get("/recordings").json()
                          if r["status"] == "complete"]) >= 2, 20, message="two segments")
    rows = [r for r in client.get("/recordings").json() if r["status"] == "complete"]
    boundary = rows[0]["end"]
    from datetime import datetime, timedelta
    mid = datetime.fromisoformat(boundary)
    start, end = mid - timedelta(seconds=1.5), mid + timedelta(seconds=1.5)
    response = client.get("/streams/cam/clip", params={"start": start.isoformat(),
                                                       "end": end.isoformat()})
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(response.content)
    info = ffprobe(clip)
    assert 2.0 <= info.duration <= 4.5  # 3 s asked, cut at 1 s keyframes
    assert info.sequences[0] % GOP == 0 and decodes_cleanly(clip)
    assert info.sequences == list(range(info.sequences[0], info.sequences[0] + len(info.stamps)))

    whole = client.get(rows[0]["url"])
    assert whole.status_code == 200
    part = client.get(rows[0]["url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]


def test_kill_minus_nine_mid_segment_then_restart(camera_factory, tmp_path):
    import signal
    import subprocess
    import sys

    import httpx

    from tests.conftest import free_port

    camera = camera_factory(["/cam"])
    port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[app]\ndatabase = "{tmp_path}/index.db"\n'
        f'[restream]\nlisten = "127.0.0.1:{free_port()}"\n'  # not 8554: a service may run
        f'[recording]\nbase_path = "{tmp_path}/rec"\nsegment_duration = "4s"\n'
        f'[[streams]]\nid = "cam"\nuri = "{camera.url()}"\nenable_recording = true\n')

    def run() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "streamwarden", "run", "--config",
                                 str(config), "--listen", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def recordings():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/recordings", timeout=2).json()
        except httpx.HTTPError:
            return None

    service = run()
    try:
        wait_for(lambda: (rows := recordings()) and len(rows) >= 2, 30, interval=0.3,
                 message="second segment opened")

        def second_segment_playable() -> float | None:
            # Wait on what is on disk, not on wall time: under CI load 2.5 s after the segment
            # opened could still be a single fragment.
            files = recorded_files(tmp_path / "rec", "cam")
            played = discoverer_duration(files[-1]) if len(files) >= 2 else None
            # a 1 s fragment in the camera's own time: up to 200 ppm under 1 s on our clock
            return played if played and played >= 0.99 else None

        playable_at_kill = wait_for(second_segment_playable, 30, interval=0.3,
                                    message="a whole fragment in the second segment")
        service.send_signal(signal.SIGKILL)
        service.wait(10)
        files = recorded_files(tmp_path / "rec", "cam")
        assert len(files) >= 2
        service = run()
        rows = wait_for(recordings, 30, interval=0.3, message="service back")
        by_path = {r["url"]: r for r in rows}
        assert len(by_path) == len(rows)
        statuses = [r["status"] for r in rows]
        assert statuses[0] == "complete" and "repaired" in statuses, statuses
        cut = next(r for r in rows if r["status"] == "repaired")
        # The repair keeps at least what was playable when the process died.
        assert cut["duration"] >= playable_at_kill, (cut["duration"], playable_at_kill)
        cut_file = httpx.get(f"http://127.0.0.1:{port}{cut['url']}", timeout=10)
        assert cut_file.status_code == 200
        (tmp_path / "cut.mp4").write_bytes(cut_file.content)
        info = ffprobe(tmp_path / "cut.mp4")
        assert info.duration >= 0.99 and info.sequences[0] % GOP == 0
        assert decodes_cleanly(tmp_path / "cut.mp4")
        for info in (ffprobe(p) for p in files[:-1]):
            assert abs(info.duration - 4.0) <= 1.0
    finally:
        service.kill()
        service.wait(10)


def test_retention_by_age_and_size(camera_factory, service_factory, tmp_path):
    from streamwarden.recording.retention import enforce

    camera = camera_factory(["/cam"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()},
                                           segment_duration="2s"))
    client = svc.client()
    wait_for(lambda: len([r for r in client.get("/recordings").json()
                          if r["status"] == "complete"]) >= 4, 25, message="four segments")
    assert client.delete("/streams/cam/record").status_code == 200
    time.sleep(1)
    db = svc.service.db
    rows = db.call(db.recordings)
    files_before = recorded_files(tmp_path / "rec", "cam")
    assert len(rows) == len(files_before) >= 4

    # by size: keep the newest segments that fit, delete oldest first (file and row together)
    newest_two = sum(r.bytes for r in rows[-2:])
    deleted = db.call(enforce, db, None, newest_two)
    remaining = db.call(db.recordings)
    assert deleted == len(rows) - 2 and [r.id for r in remaining] == [r.id for r in rows[-2:]]
    assert sorted(map(str, recorded_files(tmp_path / "rec", "cam"))) == sorted(
        r.path for r in remaining)

    # by age: everything that ended more than 1 s before "now + 1 h" goes
    assert db.call(enforce, db, 1.0, None, time.time() + 3600) == 2
    assert db.call(db.recordings) == [] and recorded_files(tmp_path / "rec", "cam") == []


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "h265"), ("mkv", "h264"), ("ts", "h264")])
def test_formats_carry_video_and_audio_untouched(camera_factory, service_factory, tmp_path,
                                                 fmt, codec):
    camera = camera_factory(["/cam"], ["--codec", codec, "--audio"])
    svc = service_factory(recording_config(tmp_path, {"cam": camera.url()}, format=fmt,
                                           segment_duration="3s"))
    client = svc.client()
    wait_streaming(client, "cam")
    wait_for(lambda: len(recorded_files(tmp_path / "rec", "cam")) >= 2, 15,
             message="two segments")
    assert client.delete("/streams/cam").status_code == 204
    files = recorded_files(tmp_path / "rec", "cam")
    assert all(p.suffix == f".{fmt}" for p in files)
    sequences = []
    for path in files:
        info = ffprobe(path)
        assert info.codecs == {codec.replace("h265", "hevc"), "aac"}, info.codecs
        assert info.sequences[0] % GOP == 0
        sequences += info.sequences
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    assert decodes_cleanly(files[0])
