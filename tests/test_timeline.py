"""The recording timeline against real cameras and a real service: what the test did to the
camera, the recording, the service, the disk and retention comes back as gaps with that reason
and those bounds, the spans and gaps tile the range exactly, nothing is `unknown`, and the
lost seconds reach /metrics."""

from __future__ import annotations

import contextlib
import itertools
import re
import sqlite3
import time
from datetime import UTC, datetime

import pytest

from streamwarden.config.model import AppSection, Config, RecordingSection, StreamConfig
from tests.conftest import state_of, wait_for
from tests.test_dashboard import (  # noqa: F401 (browser: the fixture)
    ARTIFACTS,
    CHROMIUM,
    DRIVER,
    browser,
    console_errors,
)
from tests.test_recording import FAST
from tests.test_recording_diskfull import HEADROOM, fill, small_disk  # noqa: F401 (fixture)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def timeline(client, sid: str, start: float, end: float | None = None) -> dict:
    params = {"start": iso(start)} | ({"end": iso(end)} if end is not None else {})
    answer = client.get(f"/streams/{sid}/timeline", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def tiles(body: dict) -> list[tuple[float, float, str]]:
    """Spans and gaps in time order, checked to tile [start, end) exactly, with no unknown."""
    items = sorted([(ts(s["start"]), ts(s["end"]), "covered") for s in body["spans"]]
                   + [(ts(g["start"]), ts(g["end"]), g["reason"]) for g in body["gaps"]])
    assert items[0][0] == ts(body["start"]) and items[-1][1] == ts(body["end"]), body
    for (_, end, _), (start, _, _) in itertools.pairwise(items):
        assert end == start, f"hole or overlap at {end}: {body}"
    shown = "\n".join(f"{start:.3f} {end:.3f} {what}" for start, end, what in items)
    assert all(what != "unknown" for _, _, what in items), shown
    for span in body["spans"]:
        assert span["segments"] and all(s["url"].startswith("/recordings/")
                                        for s in span["segments"])
    return items


def gaps_of(items: list[tuple[float, float, str]], reason: str) -> list[tuple[float, float]]:
    return [(start, end) for start, end, what in items if what == reason]


def lost_seconds(client, sid: str, reason: str) -> float:
    pattern = (rf'^streamwarden_recording_lost_seconds_total\{{(?=[^}}]*reason="{reason}")'
               rf'(?=[^}}]*stream="{sid}")[^}}]*\}} (\S+)$')
    match = re.search(pattern, client.get("/metrics").text, re.MULTILINE)
    return float(match.group(1)) if match else -1.0


def config(tmp_path, streams: dict[str, str], **recording) -> Config:
    return Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), segment_duration="2s",
                                   **recording),
        stream_defaults=FAST,
        streams=[StreamConfig(id=sid, uri=uri, enable_recording=True)
                 for sid, uri in streams.items()])


def complete_segments(client, sid: str, after: float = 0.0) -> int:
    rows = client.get("/recordings", params={"stream_id": sid}).json()
    return sum(1 for r in rows if r["status"] == "complete" and ts(r["start"]) >= after)


def test_camera_outage_and_recording_off(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    began = time.time()
    svc = service_factory(config(tmp_path, {"cam": camera.url()}))
    client = svc.client()
    wait_for(lambda: complete_segments(client, "cam") >= 1, 20, message="a first segment")

    killed = time.time()
    camera.kill()
    wait_for(lambda: state_of(client, "cam")["health"]["state"] != "streaming", 10,
             message="the outage noticed")
    time.sleep(1)
    camera = camera_factory(["/cam"], port=camera.port)
    back = time.time()
    wait_for(lambda: complete_segments(client, "cam", after=back) >= 1, 20,
             message="recording again after the outage")

    assert client.delete("/streams/cam/record").status_code == 200
    stopped = time.time()
    time.sleep(2)
    assert client.post("/streams/cam/record").status_code == 200
    restarted = time.time()
    wait_for(lambda: complete_segments(client, "cam", after=restarted) >= 1, 20,
             message="recording again after the stop")

    items = tiles(timeline(client, "cam", began - 5))
    for start, end, what in items:
        print(f"{start - began:8.3f} {end - began:8.3f} {what}")
    [down] = gaps_of(items, "service_not_running")  # before the first run
    assert down == pytest.approx((began - 5, svc.service.timeline.run_start), abs=1e-5)
    [offline] = gaps_of(items, "camera_offline")[-1:]
    print("camera_offline", offline[0] - killed, offline[1] - back)
    assert abs(offline[0] - killed) < 1.0, "the gap begins where the camera stopped"
    assert -0.5 < offline[1] - back < 2.5, "and ends where recording resumed"
    [off] = gaps_of(items, "recording_off")[-1:]
    print("recording_off", off[0] - stopped, off[1] - restarted)
    assert abs(off[0] - stopped) < 1.0 and -0.1 < off[1] - restarted < 2.0

    # the lost seconds: the camera's outage (once settled), never the stop
    expected = sum(end - start for start, end in gaps_of(items, "camera_offline")
                   if start > began)
    wait_for(lambda: lost_seconds(client, "cam", "camera_offline") >= expected - 0.5, 30,
             interval=1, message="the outage counted")
    assert lost_seconds(client, "cam", "camera_offline") == pytest.approx(expected, abs=0.5)


def first_run_segments(db_path) -> list[tuple[float, float]]:
    """(start, end) of every segment in the index, read from the file between two runs."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return list(conn.execute("SELECT start_ts, end_ts FROM recordings ORDER BY start_ts"))


def test_service_restart_then_retention_deletes(camera_factory, service_factory, tmp_path):
    camera = camera_factory(["/cam"])
    first = service_factory(config(tmp_path, {"cam": camera.url()}))
    wait_for(lambda: complete_segments(first.client(), "cam") >= 2, 20, message="two segments")
    began = first.service.timeline.run_start
    first.stop()
    stopped = time.time()
    recorded = first_run_segments(tmp_path / "index.db")
    time.sleep(2)

    # the same database and recordings; segments older than 8 s are deleted as new ones close
    second = service_factory(config(tmp_path, {"cam": camera.url()}, retention="8s"))
    client = second.client()
    restarted = second.service.timeline.run_start
    wait_for(lambda: complete_segments(client, "cam", after=restarted) >= 1, 20,
             message="recording again")
    items = tiles(timeline(client, "cam", began))
    downs = gaps_of(items, "service_not_running")
    assert len(downs) == 1, f"began {began} stopped {stopped} restarted {restarted}: {items}"
    [down] = downs
    assert abs(down[0] - stopped) < 1.0 and down[1] == pytest.approx(restarted, abs=1e-5)
    # counted at start-up: the stream was recording when the service stopped
    assert lost_seconds(client, "cam", "service_not_running") == pytest.approx(
        restarted - stopped, abs=1.0)

    def first_run_deleted() -> list[tuple[float, float]]:
        deleted = gaps_of(tiles(timeline(client, "cam", began)), "deleted")
        return deleted if deleted and deleted[0][1] >= recorded[-1][1] - 1e-5 else []

    [deleted, *_] = wait_for(first_run_deleted, 20, interval=0.5,
                             message="the first run's segments deleted")
    # from the first footage to the last (and the moments of the shutdown, up to the downtime)
    assert deleted[0] == pytest.approx(recorded[0][0], abs=1e-5)
    assert deleted[1] == pytest.approx(down[0], abs=1e-5) and deleted[1] - recorded[-1][1] < 1
    items = tiles(timeline(client, "cam", began))
    assert gaps_of(items, "service_not_running") == [down], "deletion keeps the downtime's reason"
    assert client.get("/recordings", params={"stream_id": "cam", "end": iso(stopped)}).json() \
        == []


def test_disk_full_gap(small_disk, camera_factory, service_factory, tmp_path):  # noqa: F811
    """On test_recording_diskfull.py's 4 MiB tmpfs (unmounted after the service stops)."""
    camera = camera_factory(["/cam"])
    cfg = config(tmp_path, {"cam": camera.url()})
    cfg = cfg.model_copy(update={"recording": cfg.recording.model_copy(
        update={"base_path": str(small_disk)})})
    filler = fill(small_disk, HEADROOM // 2)  # about 3 s of the camera
    svc = service_factory(cfg)
    client = svc.client()
    began = svc.service.timeline.run_start
    wait_for(lambda: state_of(client, "cam")["health"]["recording_error"] == "disk_full", 20,
             interval=0.2, message="disk_full")
    time.sleep(2)
    filler.unlink()
    freed = time.time()
    wait_for(lambda: complete_segments(client, "cam", after=freed) >= 1, 20,
             message="recording again")
    items = tiles(timeline(client, "cam", began))
    [stored] = svc.service.db.call(svc.service.gaps.gaps, "cam")
    [full] = gaps_of(items, "disk_full")
    assert full == pytest.approx((stored.start_ts, stored.end_ts), abs=1e-5)
    assert stored.seconds > 0.5 and stored.end_ts - freed < 3
    # the recorder's own counter, the same seconds
    assert lost_seconds(client, "cam", "disk_full") == pytest.approx(stored.seconds, abs=0.01)



def test_timeline_range_and_bad_input(service_factory, tmp_path):
    svc = service_factory(config(tmp_path, {"cam": "rtsp://127.0.0.1:9/none"}))
    client = svc.client()
    now = time.time()
    body = client.get("/streams/cam/timeline").json()  # the last 24 h by default
    assert ts(body["end"]) - ts(body["start"]) == pytest.approx(24 * 3600, abs=1e-3)
    assert ts(body["end"]) == pytest.approx(now, abs=5)
    items = tiles(body)  # never recorded: before this run, then the camera never came
    assert [what for _, _, what in items] == ["service_not_running", "recording_off",
                                              "camera_offline"]
    assert body["spans"] == []
    # a range reaching past now ends at now; a naive time is UTC
    later = client.get("/streams/cam/timeline", params={
        "start": iso(now - 60), "end": datetime.fromtimestamp(now + 3600, UTC).replace(
            tzinfo=None).isoformat()}).json()
    assert ts(later["start"]) == pytest.approx(now - 60, abs=1e-5)
    assert now <= ts(later["end"]) < now + 5

    for params, code, error in [
        ({"start": iso(now - 10), "end": iso(now - 20)}, 422, "invalid_range"),
        ({"start": iso(now - 10), "end": iso(now - 10)}, 422, "invalid_range"),
        ({"start": iso(now - 8 * 86400), "end": iso(now)}, 422, "invalid_range"),
        ({"start": iso(now + 60)}, 422, "invalid_range"),
        ({"start": "yesterday"}, 422, "invalid_request"),
    ]:
        answer = client.get("/streams/cam/timeline", params=params)
        assert (answer.status_code, answer.json()["error"]) == (code, error), (params,
                                                                                answer.text)
        assert set(answer.json()) == {"error", "detail"}
    answer = client.get("/streams/nope/timeline")
    assert (answer.status_code, answer.json()["error"]) == (404, "not_found")
    answer = client.get("/streams/bad id!/timeline")
    assert (answer.status_code, answer.json()["error"]) == (422, "invalid_id")


@pytest.mark.skipif(not (CHROMIUM and DRIVER),
                    reason="chromium/chromedriver not installed (scripts/setup.sh)")
def test_dashboard_timeline_bar_shows_gaps_and_plays_from_a_click(
        browser, camera_factory, service_factory, tmp_path):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import Select

    camera = camera_factory(["/cam"])
    svc = service_factory(config(tmp_path, {"cam": camera.url()}))
    client = svc.client()
    wait_for(lambda: complete_segments(client, "cam") >= 2, 20, message="two segments")
    assert client.delete("/streams/cam/record").status_code == 200
    time.sleep(3)
    assert client.post("/streams/cam/record").status_code == 200
    restarted = time.time()
    wait_for(lambda: complete_segments(client, "cam", after=restarted) >= 1, 20,
             message="recording again")

    browser.get(svc.base_url + "/")
    wait_for(lambda: browser.find_elements("css selector", "#card-cam .timeline .tl-span"), 10,
             message="the timeline bar drawn")
    Select(browser.find_element("id", "timeline-span")).select_by_visible_text("2 min")
    shown = """return [...document.querySelectorAll('#card-cam .timeline .tl-recording_off')]
        .map((el) => [el.dataset.start, el.dataset.end, parseFloat(el.style.left),
                      el.title]);"""
    wait_for(lambda: any(ts(end) > restarted for _, end, *_ in browser.execute_script(shown)),
             10, message="the zoomed bar")
    body = timeline(client, "cam", time.time() - 120)
    gap = max((g for g in body["gaps"] if g["reason"] == "recording_off"),
              key=lambda g: g["seconds"])  # the stop, not the start-up's few milliseconds
    assert gap["seconds"] > 2.5
    drawn = [row for row in browser.execute_script(shown) if row[0] == gap["start"]]
    assert drawn, "the gap the test made is drawn"
    start, end, left, title = drawn[0]
    assert ts(end) == pytest.approx(ts(gap["end"]), abs=1e-3)
    assert left == pytest.approx(100 * (ts(start) - time.time() + 120) / 120, abs=5)
    assert title.startswith("recording off: ")

    # a click one second into the first span plays its segment from there
    bar = browser.find_element("css selector", "#card-cam .timeline")
    range_start, range_end = browser.execute_script(
        "return [Timeline.bars.get('cam').body.start, Timeline.bars.get('cam').body.end];")
    span = next(s for s in body["spans"] if ts(s["end"]) < ts(gap["start"]) + 0.01)
    moment = ts(span["start"]) + 1.0
    segment = next(s for s in span["segments"] if ts(s["start"]) <= moment < ts(s["end"]))
    x = (moment - ts(range_start)) / (ts(range_end) - ts(range_start)) * bar.size["width"]
    ActionChains(browser).move_to_element_with_offset(
        bar, int(x - bar.size["width"] / 2), 0).click().perform()
    playing = """const v = document.querySelector('#timeline-player video');
        return v ? [v.src, v.currentTime, v.readyState, v.videoWidth] : null;"""
    wait_for(lambda: (browser.execute_script(playing) or [0, 0, 0])[2] >= 2, 10,
             message="the segment loaded")
    src, first, _, width = browser.execute_script(playing)
    assert src.endswith(segment["url"]) and width == 640
    offset = moment - ts(segment["start"])
    assert first == pytest.approx(offset, abs=1.0), "seeked to the moment clicked"
    wait_for(lambda: browser.execute_script(playing)[1] > first + 0.5, 10,
             message="the video plays on")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "timeline.png"))
    assert console_errors(browser) == []


def test_a_discontinuity_reported_by_the_recorder_explains_its_hole(tmp_path, caplog):
    """The entry point the recording session uses (reporter.discontinuity) down to the timeline,
    on a real database: the moment is stored and gives the hole around it its reason."""
    from streamwarden.db import Database
    from streamwarden.recording.index import RecordingIndex
    from streamwarden.recording.outage import OutageTracker
    from streamwarden.recording.reporter import RecordingReporter
    from streamwarden.recording.timeline_keeper import TimelineKeeper

    db = Database(tmp_path / "index.db")
    try:
        index = RecordingIndex(db)
        keeper = TimelineKeeper(db, index.gaps, index.history)
        now = time.time()
        db.call(keeper.started, now - 100)
        reporter = RecordingReporter("cam", index, lambda event: None, OutageTracker())
        index.recording_changed("cam", "continuous", now - 100)  # as reporter.recording does
        reporter.discontinuity("cam", now - 49.9, 300.0)  # the camera's clock jumped 300 s
        db.call(db.insert_segment, "cam", "/a.mp4", now - 60, now - 50, 1, "continuous",
                "complete")
        db.call(db.insert_segment, "cam", "/b.mp4", now - 48.6, now - 40, 1, "continuous",
                "complete")
        result = db.call(keeper.timeline, "cam", now - 60, now - 40, now)
        assert [(g.reason, round(g.start - now, 3), round(g.end - now, 3))
                for g in result.gaps] == [("discontinuity", -50.0, -48.6)]
        assert "camera timestamps jumped by +300.000 s" in caplog.text
    finally:
        db.close()
