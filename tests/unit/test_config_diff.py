"""The reload plan (config/diff.py) from hand-made configs: which streams are added, removed,
restarted or changed in place, what defaults do, which global keys apply and which wait."""

from __future__ import annotations

from streamwarden.config.diff import (
    APPLIED_IN_PLACE,
    RunningStream,
    plan_reload,
)
from streamwarden.config.model import (
    ApiSection,
    AppSection,
    Config,
    MqttSection,
    RecordingSection,
    SourceSettings,
    StreamConfig,
)

A = StreamConfig(id="a", uri="rtsp://10.0.0.1/a")
B = StreamConfig(id="b", uri="rtsp://10.0.0.1/b", timeout=7)


def running_as(config: Config, origin: str = "config", **overrides: StreamConfig
               ) -> dict[str, RunningStream]:
    """What a service started from `config` runs (plus streams given as `id=config`)."""
    streams = {s.id: RunningStream(origin, s, s.settings(config.stream_defaults))
               for s in config.streams}
    for sid, stream in overrides.items():
        streams[sid] = RunningStream("api", stream, stream.settings(config.stream_defaults))
    return streams


def actions(plan) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.action, c.stream_id, c.fields) for c in plan.streams]


def test_the_same_file_changes_nothing():
    old = Config(streams=[A, B])
    plan = plan_reload(old, Config(streams=[A, B]), running_as(old))
    assert plan.empty and plan.config == old


def test_added_and_removed_streams():
    old = Config(streams=[A])
    plan = plan_reload(old, Config(streams=[B]), running_as(old))
    assert actions(plan) == [("remove", "a", ()), ("add", "b", ())]
    assert plan.streams[1].config == B
    assert plan.streams[0].describe() == "stream a removed"


def test_source_settings_restart_toggles_apply_in_place():
    old = Config(streams=[A, B])
    new = Config(streams=[
        A.model_copy(update={"uri": "rtsp://10.0.0.2/a", "enable_recording": True}),
        B.model_copy(update={"enable_recording": True, "restream": False}),
    ])
    plan = plan_reload(old, new, running_as(old))
    assert actions(plan) == [("restart", "a", ("uri",)),
                             ("update", "b", ("enable_recording", "restream"))]
    assert plan.streams[0].config.enable_recording  # a restart takes the whole new entry


def test_every_source_setting_restarts():
    old = Config(streams=[A])
    for name, value in (("transport", "udp"), ("latency", 1.0), ("timeout", 9.0),
                        ("retry_timeout", 120.0), ("buffer_duration", 0.0)):
        new = Config(streams=[A.model_copy(update={name: value})])
        assert actions(plan_reload(old, new, running_as(old))) == [("restart", "a", (name,))]


def test_an_override_equal_to_the_default_restarts_nothing():
    old = Config(streams=[A])
    new = Config(streams=[A.model_copy(update={"timeout": 5.0, "enable_inference": True})])
    plan = plan_reload(old, new, running_as(old))
    assert actions(plan) == [("update", "a", ("enable_inference", "timeout"))]


def test_defaults_restart_only_the_streams_whose_settings_change():
    old = Config(streams=[A, B])  # B overrides timeout: a new default timeout is not its own
    new = Config(stream_defaults=SourceSettings(timeout=9), streams=[A, B])
    plan = plan_reload(old, new, running_as(old))
    assert actions(plan) == [("restart", "a", ("timeout",))]
    assert plan.applied == ("stream_defaults.timeout",)
    assert plan.needs_restart == ()


def test_api_streams_are_not_touched_by_defaults_or_removal():
    old = Config(streams=[A])
    api = StreamConfig(id="c", uri="rtsp://10.0.0.1/c")
    new = Config(stream_defaults=SourceSettings(latency=1), streams=[])
    plan = plan_reload(old, new, running_as(old, c=api))
    assert actions(plan) == [("remove", "a", ())]


def test_a_file_stream_that_takes_an_api_streams_id_replaces_it():
    old = Config(streams=[A])
    api_b = StreamConfig(id="b", uri="rtsp://10.0.0.9/other")
    plan = plan_reload(old, Config(streams=[A, B]), running_as(old, b=api_b))
    assert actions(plan) == [("replace", "b", ())]
    assert "replaces the stream added through the API" in plan.streams[0].describe()


def test_a_stream_removed_from_the_file_but_now_from_the_api_stays():
    old = Config(streams=[A])
    api_a = StreamConfig(id="a", uri="rtsp://10.0.0.9/a")  # deleted, then added via the API
    assert plan_reload(old, Config(), running_as(Config(), a=api_a)).streams == ()


def test_unchanged_entries_leave_what_the_api_did_alone():
    old = Config(streams=[A, B])
    patched = A.model_copy(update={"enable_recording": True})  # PATCHed through the API
    running = running_as(old)
    running["a"] = RunningStream("config", patched, patched.settings(old.stream_defaults))
    del running["b"]  # DELETEd through the API
    new = Config(app=AppSection(log_level="debug"), streams=[A, B])
    plan = plan_reload(old, new, running)
    assert plan.streams == () and plan.applied == ("app.log_level",)


def test_an_edited_entry_is_applied_whole_against_what_runs():
    old = Config(streams=[A])
    patched = A.model_copy(update={"enable_recording": True})
    running = {"a": RunningStream("config", patched, patched.settings(old.stream_defaults))}
    new = Config(streams=[A.model_copy(update={"enable_inference": True})])
    plan = plan_reload(old, new, running)
    assert actions(plan) == [("update", "a", ("enable_inference", "enable_recording"))]


def test_an_edited_entry_that_is_not_running_is_added_again():
    old = Config(streams=[A])
    new = Config(streams=[A.model_copy(update={"latency": 1.0})])
    assert actions(plan_reload(old, new, {})) == [("add", "a", ("latency",))]


def test_global_keys_applied_or_waiting_for_a_restart():
    old = Config()
    new = Config(
        app=AppSection(auto_remove_unhealthy=True, database="/var/lib/sw.db"),
        api=ApiSection(listen="127.0.0.1:9999", allowed_file_dirs=["/srv"]),
        recording=RecordingSection(retention=3600, segment_duration=60),
        mqtt=MqttSection(host="broker"),
    )
    plan = plan_reload(old, new, {})
    assert set(plan.applied) == {"app.auto_remove_unhealthy", "api.allowed_file_dirs",
                                 "recording.retention", "mqtt"}
    assert set(plan.needs_restart) == {"app.database", "api.listen",
                                       "recording.segment_duration"}
    assert set(plan.applied) <= APPLIED_IN_PLACE
    # what runs afterwards: applied keys new, the others as they run until a restart
    effective = plan.config
    assert effective.app.auto_remove_unhealthy and effective.app.database == "streamwarden.db"
    assert effective.api.listen == "127.0.0.1:8080" and effective.api.allowed_file_dirs == ["/srv"]
    assert effective.recording.retention == 3600 and effective.recording.segment_duration == 600
    assert effective.mqtt == new.mqtt
    # so the next reload of the same file reports only what still waits
    again = plan_reload(effective, new, {})
    assert again.applied == () and set(again.needs_restart) == set(plan.needs_restart)


def test_a_whole_section_waiting_for_a_restart_keeps_running():
    old = Config(api=ApiSection(tls_cert="/c.pem", tls_key="/k.pem"))
    new = Config()
    plan = plan_reload(old, new, {})
    assert set(plan.needs_restart) == {"api.tls_cert", "api.tls_key"}
    assert plan.config.api.tls_cert == "/c.pem" and plan.config.api.tls_key == "/k.pem"


def test_mqtt_removed_is_one_change():
    old = Config(mqtt=MqttSection(host="broker", password="pw"))
    plan = plan_reload(old, Config(), {})
    assert plan.applied == ("mqtt",) and plan.config.mqtt is None


def test_order_removals_first_additions_last():
    c = StreamConfig(id="c", uri="rtsp://10.0.0.1/c")
    old = Config(streams=[A, B])
    new = Config(streams=[c, B.model_copy(update={"restream": False})])
    plan = plan_reload(old, new, running_as(old))
    assert [a for a, _, _ in actions(plan)] == ["remove", "update", "add"]


def test_a_running_stream_no_file_names_is_never_touched():
    demo = StreamConfig(id="demo", uri="rtsp://127.0.0.1:8555/demo")  # `streamwarden demo`
    running = {"demo": RunningStream("config", demo, demo.settings(SourceSettings()))}
    new = Config(stream_defaults=SourceSettings(timeout=9), streams=[A])
    assert actions(plan_reload(Config(), new, running)) == [("add", "a", ())]


def test_zones_masks_and_record_on_change_in_place():
    """A polygon edited in the file must not reconnect the camera (as PUT /zones)."""
    old = Config(streams=[A])
    square = [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5], [0.1, 0.5]]
    new = Config(streams=[StreamConfig.model_validate({
        **A.model_dump(), "zones": [{"name": "driveway", "points": square}],
        "masks": [square], "record_on": ["person@driveway"]})])
    plan = plan_reload(old, new, running_as(old))
    assert actions(plan) == [("update", "a", ("zones", "masks", "record_on"))]
