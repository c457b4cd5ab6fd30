"""Notifications → hook triggers, and what a command's environment and a webhook's body say.

Hand-made messages shaped as the service publishes them (manager, recording index and
reporter, event log), so a change of shape on either side shows here.
"""

from __future__ import annotations

import json

import pytest

from streamwarden.hooks.triggers import HOOK_NAMES, Trigger, environment, iso, payload, triggers

T = 1_714_564_800.25  # 2024-05-01T12:00:00.250Z


def state(new: str, old: str, reason: str = "timeout") -> dict:
    return {"type": "state", "stream_id": "cam", "state": new, "previous_state": old,
            "reason": reason, "retry_count": 2, "ts": T}


@pytest.mark.parametrize(("old", "new", "hooks"), [
    ("starting", "streaming", ["stream_ready"]),
    ("retrying", "streaming", ["stream_ready"]),
    ("failed", "streaming", ["stream_ready"]),
    ("streaming", "retrying", ["stream_lost"]),
    ("streaming", "failed", ["stream_lost", "stream_failed"]),
    ("retrying", "failed", ["stream_failed"]),
    ("starting", "retrying", []),  # never streamed: nothing was lost
    ("starting", "failed", ["stream_failed"]),
    ("streaming", "stopped", []),  # removed on purpose
])
def test_state_changes(old, new, hooks):
    fired = triggers(state(new, old))
    assert [t.hook for t in fired] == hooks
    for trigger in fired:
        assert trigger.stream_id == "cam" and trigger.time == T
        assert trigger.details == {"state": new, "previous_state": old, "reason": "timeout",
                                   "retry_count": 2}


def test_segment_complete_carries_the_segment():
    message = {"type": "segment_closed", "stream_id": "cam", "recording_id": 7,
               "duration": 2.04, "bytes": 123456, "path": "/rec/cam/a.mp4", "start": T - 2.04,
               "end": T, "status": "repaired", "ts": T + 0.1}
    [trigger] = triggers(message)
    assert trigger == Trigger("segment_complete", "cam", T + 0.1, {
        "segment_path": "/rec/cam/a.mp4", "recording_id": 7, "segment_start": T - 2.04,
        "segment_end": T, "segment_duration": 2.04, "segment_bytes": 123456,
        "segment_status": "repaired"})
    env = environment(trigger)
    assert env["STREAMWARDEN_SEGMENT_PATH"] == "/rec/cam/a.mp4"
    assert env["STREAMWARDEN_RECORDING_ID"] == "7"
    assert env["STREAMWARDEN_SEGMENT_END"] == repr(T)
    assert env["STREAMWARDEN_SEGMENT_END_ISO"] == "2024-05-01T12:00:00.250Z"
    assert env["STREAMWARDEN_SEGMENT_DURATION"] == "2.04"
    assert env["STREAMWARDEN_SEGMENT_STATUS"] == "repaired"


@pytest.mark.parametrize(("change", "kind"), [("new", "event_start"),
                                              ("update", "event_update"),
                                              ("end", "event_end")])
def test_detection_event_life(change, kind):
    """A tracked object's `event` message: new, update and end are the three hooks."""
    message = {"type": "event", "change": change, "stream_id": "cam", "event_id": 42,
               "object_id": "9f3a", "label": "person", "start": T - 3, "end": T,
               "confidence": 0.87, "detections": 15, "model": "nanodet", "ts": T,
               "zones": [{"zone": "driveway", "entered": T - 2},
                         {"zone": "porch", "entered": T - 1}],
               "reasons": ["zone:porch", "picture"] if change == "update" else []}
    if change == "end":
        message["reason"] = "gap"
    [trigger] = triggers(message)
    assert trigger.hook == kind
    env = environment(trigger)
    assert env["STREAMWARDEN_EVENT_ID"] == "42" and env["STREAMWARDEN_LABEL"] == "person"
    assert env["STREAMWARDEN_OBJECT_ID"] == "9f3a"
    assert env["STREAMWARDEN_CONFIDENCE"] == "0.87" and env["STREAMWARDEN_DETECTIONS"] == "15"
    assert env["STREAMWARDEN_EVENT_START_ISO"] == iso(T - 3)
    assert env["STREAMWARDEN_MODEL"] == "nanodet"
    assert env["STREAMWARDEN_ZONES"] == "driveway,porch"
    assert ("STREAMWARDEN_END_REASON" in env) == (kind == "event_end")
    assert env.get("STREAMWARDEN_UPDATE_REASONS") == (
        "zone:porch,picture" if kind == "event_update" else None)


def test_an_object_in_no_zone_leaves_zones_unset():
    [trigger] = triggers({"type": "event", "change": "new", "stream_id": "cam",
                          "event_id": 1, "zones": [], "reasons": []})
    assert "STREAMWARDEN_ZONES" not in environment(trigger)


def test_an_event_message_without_a_known_change_triggers_nothing():
    assert triggers({"type": "event", "change": "moved", "stream_id": "cam"}) == []
    assert triggers({"type": "event_start", "stream_id": "cam"}) == [], "not a notification"


@pytest.mark.parametrize(("now", "before", "hooks"), [
    ("disk_full", None, ["disk_full"]),
    (None, "disk_full", ["disk_full_end"]),
    ("write_error", "disk_full", ["disk_full_end"]),
    ("disk_full", "write_error", ["disk_full"]),
    ("write_error", None, []),
    (None, "write_error", []),
])
def test_disk_full_and_its_end(now, before, hooks):
    message = {"type": "recording_error", "stream_id": "cam", "recording_error": now,
               "previous": before, "since": T if now else None,
               "lost_seconds": 4.5 if before else None, "ts": T}
    fired = triggers(message)
    assert [t.hook for t in fired] == hooks
    if hooks == ["disk_full"]:
        assert environment(fired[0])["STREAMWARDEN_SINCE_ISO"] == iso(T)
    if hooks == ["disk_full_end"]:
        env = environment(fired[0])
        assert env["STREAMWARDEN_LOST_SECONDS"] == "4.5"
        assert env["STREAMWARDEN_RECORDING_ERROR"] == now if now else (
            "STREAMWARDEN_RECORDING_ERROR" not in env and "STREAMWARDEN_SINCE" not in env)


@pytest.mark.parametrize("message", [
    {"type": "detection", "stream_id": "cam", "detections": []},
    {"type": "recording", "stream_id": "cam", "recording": True},
    {"type": "stream_added", "stream_id": "cam"},
    {"type": "state", "state": "streaming", "previous_state": "starting"},  # no stream id
    {"type": "stats", "streams": []},
])
def test_other_notifications_trigger_nothing(message):
    assert triggers(message) == []


def test_environment_always_names_hook_stream_and_time_and_skips_unknowns():
    trigger = Trigger("stream_lost", "garage", T, {"reason": None, "retry_count": 0})
    assert environment(trigger) == {
        "STREAMWARDEN_HOOK": "stream_lost", "STREAMWARDEN_STREAM_ID": "garage",
        "STREAMWARDEN_TIME": repr(T), "STREAMWARDEN_TIME_ISO": "2024-05-01T12:00:00.250Z",
        "STREAMWARDEN_RETRY_COUNT": "0"}


def test_payload_is_json_with_the_same_facts():
    trigger = Trigger("event_end", "cam", T, {"event_id": 3, "label": "car", "end_reason": None})
    body = json.loads(json.dumps(payload(trigger)))
    assert body == {"type": "event_end", "stream_id": "cam", "time": T,
                    "details": {"event_id": 3, "label": "car", "end_reason": None}}


def test_every_hook_name_is_reachable():
    """Each configured name has a notification that fires it (no dead config keys)."""
    messages = [state("streaming", "starting"), state("failed", "streaming"),
                {"type": "segment_closed", "stream_id": "c"},
                *({"type": "event", "change": c, "stream_id": "c"}
                  for c in ("new", "update", "end")),
                {"type": "recording_error", "stream_id": "c", "recording_error": "disk_full"},
                {"type": "recording_error", "stream_id": "c", "previous": "disk_full"}]
    fired = {t.hook for m in messages for t in triggers(m)}
    assert fired == set(HOOK_NAMES)
