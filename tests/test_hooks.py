"""Hooks end to end: a real camera, the running service, and a hook script that writes its
environment to a file per run. Each trigger runs its command with the right environment:
stream ready/lost/failed (the camera killed and started again), segment complete (1 s
segments), disk full and its end (a free-space floor above what the disk has), detection
event start/update/end (a test detector plugin); a hanging hook is killed at the timeout and
counted; a per-stream override turns a hook off. Bad input: `check-config` names a hook
program that does not exist and a webhook URL that is not http(s)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from streamwarden.config.hooks import HooksSection
from streamwarden.config.model import (
    AppSection,
    Config,
    InferenceSection,
    RecordingSection,
    SourceSettings,
    StreamConfig,
)
from streamwarden.recording.recorder import Recorder
from tests.conftest import REPO, state_of, wait_for
from tests.test_inference import plugin_path  # noqa: F401  (fixture)

# failed 3 s after the last frame; a returning camera is picked up within about a second
FAST = SourceSettings(timeout=2, restart_timeout=0.5, retry_timeout=3, failed_retry_interval=1)


class HookLog:
    """The runs of the test's hook script: one `<hook>.<pid>.env` file per run."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path / "runs"
        self.dir.mkdir()
        self.script = tmp_path / "hook.sh"
        self.script.write_text('#!/bin/sh\nenv | grep ^STREAMWARDEN_ > "$1/.$$"\n'
                               'mv "$1/.$$" "$1/$STREAMWARDEN_HOOK.$$.env"\n')
        self.script.chmod(0o755)
        self.command = [str(self.script), str(self.dir)]

    def runs(self, hook: str, stream_id: str | None = None) -> list[dict[str, str]]:
        found = []
        for path in sorted(self.dir.glob(f"{hook}.*.env"), key=lambda p: p.stat().st_mtime):
            env = dict(line.split("=", 1) for line in path.read_text().splitlines())
            if stream_id is None or env["STREAMWARDEN_STREAM_ID"] == stream_id:
                found.append(env)
        return found

    def wait(self, hook: str, stream_id: str, count: int = 1,
             timeout: float = 20) -> list[dict[str, str]]:
        return wait_for(lambda: len(self.runs(hook, stream_id)) >= count and
                        self.runs(hook, stream_id), timeout, interval=0.1,
                        message=f"{count} run(s) of {hook} for {stream_id}")


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_stream_segment_and_disk_hooks_run_with_their_environment(camera_factory,
                                                                  service_factory, tmp_path):
    hooks = HookLog(tmp_path)
    camera = camera_factory(["/cam", "/quiet"])
    every = {f"on_{h}": hooks.command for h in ("stream_ready", "stream_lost", "stream_failed",
                                                "segment_complete", "disk_full",
                                                "disk_full_end")}
    config = Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), segment_duration="1s"),
        stream_defaults=FAST,
        streams=[StreamConfig(id="cam", uri=camera.url("/cam"), enable_recording=True),
                 StreamConfig(id="quiet", uri=camera.url("/quiet"))],
        hooks=HooksSection(**every, timeout=2, streams={"quiet": {
            "on_stream_ready": [],  # turned off for this stream
            "on_stream_failed": ["sh", "-c", "sleep 60"]}}),  # hangs: killed after 2 s
    )
    svc = service_factory(config)
    client = svc.client()

    ready = hooks.wait("stream_ready", "cam")[0]
    assert (ready["STREAMWARDEN_STATE"], ready["STREAMWARDEN_PREVIOUS_STATE"]) == (
        "streaming", "starting")
    assert ready["STREAMWARDEN_HOOK"] == "stream_ready"
    assert abs(float(ready["STREAMWARDEN_TIME"]) - time.time()) < 20
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ready["STREAMWARDEN_TIME_ISO"])

    segment = hooks.wait("segment_complete", "cam")[0]
    path = Path(segment["STREAMWARDEN_SEGMENT_PATH"])
    assert path.is_file() and path.stat().st_size == int(segment["STREAMWARDEN_SEGMENT_BYTES"])
    assert segment["STREAMWARDEN_SEGMENT_STATUS"] == "complete"
    assert 0.5 < float(segment["STREAMWARDEN_SEGMENT_DURATION"]) < 3
    assert float(segment["STREAMWARDEN_SEGMENT_END"]) > float(segment["STREAMWARDEN_SEGMENT_START"])
    listed = client.get("/recordings", params={"stream_id": "cam"}).json()
    assert int(segment["STREAMWARDEN_RECORDING_ID"]) in [r["id"] for r in listed]

    disk_full_and_back(svc, client, hooks)

    before = {hook: len(hooks.runs(hook, "cam")) for hook in ("stream_lost", "stream_failed")}
    camera.kill()
    lost = hooks.wait("stream_lost", "cam", count=before["stream_lost"] + 1)[-1]
    assert lost["STREAMWARDEN_PREVIOUS_STATE"] == "streaming"
    assert lost["STREAMWARDEN_STATE"] == "retrying" and lost["STREAMWARDEN_REASON"]
    failed = hooks.wait("stream_failed", "cam", count=before["stream_failed"] + 1)[-1]
    assert failed["STREAMWARDEN_STATE"] == "failed"
    assert int(failed["STREAMWARDEN_RETRY_COUNT"]) >= 1
    assert hooks.runs("stream_lost", "quiet"), "not overridden for quiet: the global one"

    ready_before = len(hooks.runs("stream_ready", "cam"))
    camera_factory(["/cam", "/quiet"], port=camera.port)
    again = hooks.wait("stream_ready", "cam", count=ready_before + 1)[-1]
    assert again["STREAMWARDEN_PREVIOUS_STATE"] == "failed"
    wait_for(lambda: state_of(client, "quiet")["health"]["state"] == "streaming", 10,
             message="quiet back")
    assert hooks.runs("stream_ready", "quiet") == [], "turned off by its override"
    metrics = wait_for(lambda: (text := client.get("/metrics").text) and metric(
        text, "streamwarden_hook_failures_total", hook="stream_failed", reason="timeout") and
        text, 10, message="the hanging hook killed and counted")
    assert metric(metrics, "streamwarden_hook_runs_total", hook="stream_ready") == len(
        hooks.runs("stream_ready")), "each run counted (none for quiet)"
    assert metric(metrics, "streamwarden_hook_failures_total", hook="stream_ready",
                  reason="exit") == 0


def disk_full_and_back(svc, client, hooks: HookLog) -> None:
    """A free-space floor above what the disk has: the next session is refused (disk_full);
    then a floor it has: recording resumes (disk_full_end)."""
    recorder = svc.manager.get("cam").consumer(Recorder)
    recorder.settings.min_free = 10**18
    assert client.delete("/streams/cam/record").status_code == 200
    assert client.post("/streams/cam/record").status_code == 200
    [full] = hooks.wait("disk_full", "cam", timeout=10)
    assert full["STREAMWARDEN_RECORDING_ERROR"] == "disk_full"
    assert abs(float(full["STREAMWARDEN_SINCE"]) - time.time()) < 10
    assert "STREAMWARDEN_SINCE_ISO" in full
    recorder.settings.min_free = 1
    [back] = hooks.wait("disk_full_end", "cam", timeout=10)
    assert back["STREAMWARDEN_PREVIOUS_ERROR"] == "disk_full"
    assert "STREAMWARDEN_RECORDING_ERROR" not in back, "no error any more: left out, not empty"
    assert float(back["STREAMWARDEN_LOST_SECONDS"]) >= 0


def test_detection_event_hooks_start_update_end(camera_factory, service_factory, tmp_path,
                                                plugin_path):  # noqa: F811
    hooks = HookLog(tmp_path)
    camera = camera_factory(["/cam"])
    config = Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        stream_defaults=FAST,
        inference=InferenceSection(plugin="tests.plugins.detectors:RisingDetector",
                                   event_gap=2.0, fps=5),
        streams=[StreamConfig(id="cam", uri=camera.url(), enable_inference=True)],
        hooks=HooksSection(on_event_start=hooks.command, on_event_update=hooks.command,
                           on_event_end=hooks.command),
    )
    svc = service_factory(config)
    client = svc.client()
    # (on a busy machine results may pause past event_gap and split the run into two events:
    # the test follows the event that got the update)
    update = hooks.wait("event_update", "cam", timeout=40)[0]
    event_id = update["STREAMWARDEN_EVENT_ID"]
    [start] = [e for e in hooks.runs("event_start", "cam")
               if e["STREAMWARDEN_EVENT_ID"] == event_id]
    assert start["STREAMWARDEN_LABEL"] == "person"
    assert start["STREAMWARDEN_MODEL"] == "rising-test-model"
    assert float(update["STREAMWARDEN_CONFIDENCE"]) > float(start["STREAMWARDEN_CONFIDENCE"])
    assert client.patch("/streams/cam", json={"enable_inference": False}).status_code == 200
    turned_off = time.time()

    def ended() -> list[dict[str, str]]:
        return [e for e in hooks.runs("event_end", "cam")
                if e["STREAMWARDEN_EVENT_ID"] == event_id]

    [end] = wait_for(ended, 10, message="event_end of the event")
    assert end["STREAMWARDEN_END_REASON"] == "gap"
    assert float(end["STREAMWARDEN_EVENT_END"]) <= turned_off + 0.5
    assert time.time() - turned_off < 5, "ended within event_gap and a tick"
    [row] = [e for e in client.get("/events", params={"stream_id": "cam"}).json()
             if str(e["id"]) == event_id]
    assert row["detections"] == int(end["STREAMWARDEN_DETECTIONS"])
    assert float(end["STREAMWARDEN_CONFIDENCE"]) == row["confidence"]


def test_the_last_segment_at_shutdown_still_runs_its_hook(camera_factory, service_factory,
                                                          tmp_path):
    hooks = HookLog(tmp_path)
    camera = camera_factory(["/cam"])
    config = Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), segment_duration="10m"),
        stream_defaults=FAST,
        streams=[StreamConfig(id="cam", uri=camera.url(), enable_recording=True)],
        hooks=HooksSection(on_segment_complete=hooks.command),
    )
    svc = service_factory(config)
    client = svc.client()
    wait_for(lambda: client.get("/recordings").json(), 15, message="a segment opened")
    time.sleep(1.0)
    assert hooks.runs("segment_complete") == []
    svc.stop()  # the open segment is closed on the way out
    [segment] = hooks.runs("segment_complete", "cam")
    assert Path(segment["STREAMWARDEN_SEGMENT_PATH"]).is_file()
    assert float(segment["STREAMWARDEN_SEGMENT_DURATION"]) >= 0.5


def test_check_config_names_a_missing_hook_program_and_a_bad_webhook_scheme(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[hooks]\non_segment_complete = ["/usr/local/bin/no-such-upload", "--fast"]\n'
                    '\n[[webhooks]]\nurl = "ftp://example.com/in"\n')
    result = subprocess.run([sys.executable, "-m", "streamwarden", "check-config", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 2
    assert (f"{path}:2: hooks.on_segment_complete: '/usr/local/bin/no-such-upload' does not "
            "exist") in result.stderr
    assert (f"{path}:5: webhooks[0].url: a webhook URL must be http:// or https://, not 'ftp'"
            in result.stderr)
    assert "Traceback" not in result.stderr
