"""`detect_uri`/`detect_fit` on a stream and the `[inference] activity_*` keys."""

from __future__ import annotations

import pytest

from streamwarden.config.loader import ConfigError, parse_config
from streamwarden.config.redact import redact

STREAM = '[[streams]]\nid = "cam"\nuri = "rtsp://10.0.0.5/main"\n'


def issues_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.toml")
    return [(i.key, i.line, i.message) for i in info.value.issues]


def test_detect_uri_takes_environment_references_and_is_redacted_like_uri():
    config = parse_config(STREAM + 'detect_uri = "rtsp://admin:${CAM_PW}@10.0.0.5/sub"\n'
                          'detect_fit = "crop"\n', environ={"CAM_PW": "s3cret"})
    stream = config.streams[0]
    assert stream.detect_uri == "rtsp://admin:s3cret@10.0.0.5/sub"
    assert stream.detect_fit == "crop"
    shown = redact(config.model_dump())["streams"][0]
    assert "s3cret" not in shown["detect_uri"] and "10.0.0.5/sub" in shown["detect_uri"]


def test_detect_uri_is_optional_and_stretch_is_the_default():
    stream = parse_config(STREAM).streams[0]
    assert stream.detect_uri is None and stream.detect_fit == "stretch"


@pytest.mark.parametrize(("line", "key", "fragment"), [
    ('detect_uri = "ftp://10.0.0.5/sub"', "streams[0].detect_uri", "scheme"),
    ('detect_uri = "rtsp://10.0.0.5/main"', "streams[0]", "same as uri"),
    ('detect_fit = "zoom"', "streams[0].detect_fit", "stretch"),
])
def test_bad_detect_settings_are_named(line, key, fragment):
    issues = issues_of(STREAM + line + "\n")
    assert len(issues) == 1
    found_key, found_line, message = issues[0]
    assert found_key == key and found_line is not None
    assert fragment in message


def test_activity_gate_settings():
    config = parse_config('[inference]\nactivity_gate = true\nactivity_threshold = 6\n'
                          'activity_hold = "8s"\n')
    settings = config.inference.activity_settings()
    assert settings is not None and (settings.threshold, settings.hold) == (6.0, 8.0)
    assert parse_config("[inference]\nactivity_gate = false\n").inference \
        .activity_settings() is None


@pytest.mark.parametrize("text", ["activity_threshold = 0.5", 'activity_hold = "11m"',
                                  "activity_gate = 3"])
def test_bad_activity_settings_are_refused(text):
    issues = issues_of(f"[inference]\n{text}\n")
    assert len(issues) == 1 and issues[0][0].startswith("inference")


def test_a_reload_adds_changes_and_removes_detect_uri_in_place():
    from streamwarden.config.diff import RunningStream, plan_reload
    from streamwarden.config.model import Config, StreamConfig

    plain = StreamConfig(id="a", uri="rtsp://10.0.0.1/main")
    sub = plain.model_copy(update={"detect_uri": "rtsp://10.0.0.1/sub"})
    other = plain.model_copy(update={"detect_uri": "rtsp://10.0.0.1/sub2", "detect_fit": "crop"})
    changes = ((plain, sub, ("detect_uri",)), (sub, other, ("detect_uri", "detect_fit")),
               (sub, plain, ("detect_uri",)))
    for old, new, fields in changes:
        before = Config(streams=[old])
        running = {"a": RunningStream("config", old, old.settings(before.stream_defaults))}
        plan = plan_reload(before, Config(streams=[new]), running)
        assert [(c.action, c.fields) for c in plan.streams] == [("update", fields)]


def test_motion_gate_follows_the_activity_gate_unless_set():
    assert parse_config("[inference]\nactivity_gate = true\n").inference.motion_gated
    assert not parse_config("[inference]\n").inference.motion_gated
    assert not parse_config("[inference]\nactivity_gate = true\nmotion_gate = false\n"
                            ).inference.motion_gated
    assert parse_config("[inference]\nmotion_gate = true\n").inference.motion_gated


def test_model_threads_default_to_the_cores_and_reach_the_session():
    import os

    from streamwarden.inference.detectors.factory import (
        DetectorSpec,
        build_detector,
        build_model,
    )

    section = parse_config("[inference]\n").inference
    assert section.threads == 0 and section.model_threads() == len(os.sched_getaffinity(0))
    assert parse_config("[inference]\nthreads = 1\n").inference.model_threads() == 1
    spec = DetectorSpec.from_config(parse_config("[inference]\nthreads = 2\n").inference)
    assert spec.threads == 2
    detector = build_model(spec)  # two calls side by side, each on one thread
    assert detector._session.get_session_options().intra_op_num_threads == 1
    assert detector.parallel_calls == 2 and build_detector(spec).parallel_calls == 2


def test_negative_model_threads_are_a_config_error():
    with pytest.raises(ConfigError, match="threads"):
        parse_config("[inference]\nthreads = -1\n")
