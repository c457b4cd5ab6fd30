"""A recording volume that really fills up (a small tmpfs), then gets space back.

The cameras, the API and the other streams must not notice; health must say `disk_full` for
as long as the disk is full (not every other second); the index must not claim a complete
segment that is empty or unplayable; the lost time is counted and stored as a gap; recording
resumes by itself when space returns.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from websockets.sync.client import connect

from streamwarden.config.model import AppSection, Config, RecordingSection, StreamConfig
from tests.conftest import wait_for
from tests.media import discoverer_duration, ffprobe, recorded_files
from tests.test_recording import FAST

DISK = 4 * 1024 * 1024
FPS = 25  # the test cameras'
HEADROOM = 700 * 1024  # what the filler leaves: about 3 s of the two test cameras


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 4 MiB tmpfs; request it before service_factory so it is unmounted after the service."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "rec"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
                   check=True)
    yield mount
    if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    filler = mount / "filler"
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    with open(filler, "wb") as out:
        out.write(b"\0" * max(0, free - leave))
    return filler


def lost_seconds(metrics: str, stream_id: str) -> float:
    pattern = (r'^streamwarden_recording_lost_seconds_total\{(?=[^}]*reason="disk_full")'
               rf'(?=[^}}]*stream="{stream_id}")[^}}]*\}} (\S+)$')
    match = re.search(pattern, metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


class Events:
    """Every WebSocket event of the run, read on a thread."""

    def __init__(self, socket):
        self.items: list[dict] = []
        self._stop = threading.Event()
        self._socket = socket
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.items.append(json.loads(self._socket.recv(timeout=0.5)))
            except TimeoutError:
                continue
            except Exception:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def of(self, kind: str, stream_id: str) -> list[dict]:
        return [e for e in self.items if e.get("type") == kind and e.get("stream_id") == stream_id]


def test_disk_full_on_a_real_volume_then_space_returns(small_disk, service_factory, camera_factory,
                                                        tmp_path):
    camera = camera_factory(["/a", "/b"])
    config = Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(small_disk), segment_duration="2s"),
        # A 2 s pre-event buffer: what it still holds when space returns is recorded, so
        # from 2 s into the outage, time is lost for good and counted as it goes.
        stream_defaults=FAST.model_copy(update={"buffer_duration": 2.0}),
        streams=[StreamConfig(id="a", uri=camera.url("/a"), enable_recording=True),
                 StreamConfig(id="b", uri=camera.url("/b"), enable_recording=True)],
    )
    filler = fill(small_disk, HEADROOM)
    svc = service_factory(config)
    client = svc.client()
    with connect(f"ws://127.0.0.1:{svc.port}/ws") as socket:
        events = Events(socket)
        try:
            space_back_at = outage_then_recovery(client, filler)
        finally:
            events.close()
    # Each change of recording_error is told once: when the outage starts, when it ends.
    for sid in ("a", "b"):
        changes = [e["recording_error"] for e in events.of("recording_error", sid)]
        assert changes == ["disk_full", None], (sid, changes)

    rows = client.get("/recordings").json()
    check_index_against_disk(client, svc, small_disk, rows)
    gaps = svc.service.db.call(svc.service.gaps.gaps, "a")
    assert [(g.reason, g.open) for g in gaps] == [("disk_full", False)], gaps
    gap = gaps[0]
    assert gap.seconds >= 5 and gap.end_ts <= space_back_at + 5
    a_rows = [r for r in rows if r["stream_id"] == "a"]
    before = [r for r in a_rows if _ts(r["start"]) < gap.start_ts]
    after = [r for r in a_rows if _ts(r["start"]) >= gap.end_ts - 0.01]
    assert before and after, "recorded before the disk filled and after it emptied"
    assert abs(_ts(before[-1]["end"]) - gap.start_ts) < 0.1, "the gap begins where recording ends"
    assert abs(_ts(after[0]["start"]) - gap.end_ts) < 0.1, "and ends where it begins again"
    assert lost_seconds(client.get("/metrics").text, "a") == pytest.approx(gap.seconds, abs=0.01)


def outage_then_recovery(client, filler: Path) -> float:
    """Fill the disk, watch health through the outage, free space, wait for new segments."""
    wait_for(lambda: all(h["recording_error"] == "disk_full"
                         for h in client.get("/health").json()), 20,
             interval=0.2, message="disk_full reported for both streams")
    samples = []
    lost = []
    until = time.monotonic() + 6
    while time.monotonic() < until:
        health = {h["id"]: h for h in client.get("/health").json()}
        samples.append((health["a"]["recording_error"], health["b"]["recording_error"],
                        health["a"]["state"], health["b"]["state"]))
        lost.append(lost_seconds(client.get("/metrics").text, "a"))
        time.sleep(0.2)
    assert len(samples) >= 15
    assert {s[:2] for s in samples} == {("disk_full", "disk_full")}, samples
    assert {s[2:] for s in samples} == {("streaming", "streaming")}, "ingest must not notice"
    assert lost == sorted(lost) and lost[-1] > lost[0], f"lost seconds counted as they go: {lost}"

    space_back_at = time.time()
    filler.unlink()
    wait_for(lambda: all(h["recording_error"] is None for h in client.get("/health").json()),
             6, interval=0.2, message="recording resumed")
    resumed_in = time.time() - space_back_at
    assert resumed_in < 4, f"recording took {resumed_in:.1f} s to resume"

    def complete_after_recovery() -> bool:
        rows = client.get("/recordings", params={"stream_id": "a"}).json()
        return any(r["status"] == "complete" and _ts(r["start"]) > space_back_at - 10
                   and _ts(r["end"]) > space_back_at for r in rows)

    wait_for(complete_after_recovery, 10, interval=0.3, message="complete segments after")
    for sid in ("a", "b"):
        assert client.delete(f"/streams/{sid}/record").status_code == 200
    wait_for(lambda: all(r["status"] != "recording" for r in client.get("/recordings").json()),
             10, message="segments finalised")
    return space_back_at


def check_index_against_disk(client, svc, disk: Path, rows: list[dict]) -> None:
    """Every file has its row and every row its file; nothing claimed is empty or unplayable."""
    db = svc.service.db
    paths = {r["id"]: Path(db.call(db.recording, r["id"]).path) for r in rows}
    on_disk = {p for sid in ("a", "b") for p in recorded_files(disk, sid)}
    assert set(paths.values()) == on_disk
    statuses = [r["status"] for r in rows]
    assert set(statuses) <= {"complete", "repaired"}, statuses
    assert "repaired" in statuses, "the segments cut by the full disk keep what plays"
    for row in rows:
        path = paths[row["id"]]
        assert row["bytes"] and row["bytes"] == path.stat().st_size, row
        assert discoverer_duration(path) is not None, f"the discoverer rejects {path}"
        frames = ffprobe(path).sequences  # the frames really in the file, by their stamps
        assert frames and frames == list(range(frames[0], frames[0] + len(frames))), row
        assert row["duration"] == pytest.approx(len(frames) / FPS, abs=0.2), (row, len(frames))
        download = client.get(row["url"])
        assert download.status_code == 200 and len(download.content) == row["bytes"]


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
