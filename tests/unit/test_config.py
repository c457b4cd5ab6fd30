"""Config loading: the design note's example as written, and every bad-input message."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamwarden.config.durations import parse_duration, parse_size
from streamwarden.config.loader import ConfigError, config_warnings, load_config, parse_config
from streamwarden.uris import redact_uri, scrub, validate_uri

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "design-note.toml"
SEED = REPO.parent / "shared" / "seed" / "design-note.md"


def issues_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.toml")
    return [(i.key, i.line, i.message) for i in info.value.issues]


def test_design_note_example_loads_as_written():
    if SEED.exists():  # the example in the repo is the design note's block, byte for byte
        block = re.search(r"```toml\n(.*?)```", SEED.read_text(), re.S).group(1)
        assert EXAMPLE.read_text() == block
    config = load_config(EXAMPLE)
    assert [s.id for s in config.streams] == ["camera_1", "camera_2"]
    assert config.app.auto_remove_unhealthy is True
    assert config.app.health_check_interval == 5
    assert config.recording.segment_duration == 600
    assert config.inference.backend == "nvidia" and config.inference.batch_size == 4
    defaults = config.stream_defaults
    assert (defaults.timeout, defaults.retry_timeout, defaults.restart_timeout) == (5, 60, 3)
    assert config.streams[0].enable_inference and config.streams[1].enable_recording
    assert config.streams[0].settings(defaults).buffer_duration == 10


def test_nvidia_backend_without_gpu_is_a_warning(monkeypatch):
    monkeypatch.setattr("streamwarden.config.loader.nvidia_available", lambda: False)
    warnings = config_warnings(load_config(EXAMPLE))
    assert any("no NVIDIA GPU" in w and "CPU" in w for w in warnings)


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment"),
    [
        ('[app]\nhealth_check_intervall = 5\n', "app.health_check_intervall", 2, "unknown key"),
        ('[stream_defaults]\ntimeout = "5 minutes"\n', "stream_defaults.timeout", 2,
         '"500ms", "5s", "10m", "1h"'),
        ('[[streams]]\nid = "cam 1"\nuri = "rtsp://h/x"\n', "streams[0].id", 2,
         "not a valid stream id"),
        ('[[streams]]\nid = "../etc"\nuri = "rtsp://h/x"\n', "streams[0].id", 2,
         "not a valid stream id"),
        (f'[[streams]]\nid = "{"a" * 500}"\nuri = "rtsp://h/x"\n', "streams[0].id", 2,
         "not a valid stream id"),
        ('[[streams]]\nid = "a"\nuri = "ftp://h/x"\n', "streams[0].uri", 3,
         "unsupported URI scheme 'ftp'"),
        ('[[streams]]\nid = "a"\nuri = "rtsp://"\n', "streams[0].uri", 3, "needs a host"),
        ('[[streams]]\nid = "a"\n', "streams[0].uri", 1, "required key is missing"),
        ('[api]\nlisten = "8080"\n', "api.listen", 2, "HOST:PORT"),
        ('[recording]\nformat = "avi"\n', "recording.format", 2, "'mp4', 'mkv' or 'ts'"),
        ('[stream_defaults]\ntransport = "quic"\n', "stream_defaults.transport", 2, "tcp"),
        ('[restream]\nfallback = "black"\n', "restream.fallback", 2, "'none' or 'slate'"),
        ('[inference]\nmodel = "yolo"\n', "inference.model", 2, "'nanodet' or 'blazepose'"),
        ('[inference]\nprecision = "int4"\n', "inference.precision", 2, "'int8' or 'fp32'"),
        ('[inference]\nevent_score = 1.5\n', "inference.event_score", 2,
         "less than or equal to 1"),
        ('[inference]\nevent_score = -0.1\n', "inference.event_score", 2,
         "greater than or equal to 0"),
        ('[inference]\nevent_score = "high"\n', "inference.event_score", 2, "a valid number"),
        ('[inference]\nmodel = "nanodet"\nmodel_path = "/m.onnx"\n', "inference", 1,
         "cannot go with model_path"),
    ],
)
def test_bad_config_names_key_and_line(text, key, line, fragment):
    issues = issues_of(text)
    assert (key, line) in [(k, n) for k, n, _ in issues], issues
    message = next(m for k, n, m in issues if k == key)
    assert fragment in message


def test_duplicate_ids_reported_at_the_second_one():
    text = '[[streams]]\nid = "a"\nuri = "rtsp://h/1"\n\n[[streams]]\nid = "a"\nuri = "rtsp://h/2"\n'
    issues = issues_of(text)
    assert issues == [("streams[1].id", 6, "duplicate stream id 'a' (first used at streams[0])")]


def test_all_problems_reported_at_once():
    text = (
        '[app]\nbogus = 1\n[stream_defaults]\ntimeout = "soon"\n'
        '[[streams]]\nid = "bad id"\nuri = "gopher://x"\n'
    )
    keys = {k for k, _, _ in issues_of(text)}
    assert keys == {"app.bogus", "stream_defaults.timeout", "streams[0].id", "streams[0].uri"}


def test_malformed_toml_gives_the_line():
    issues = issues_of('[app]\nauto_remove_unhealthy = \n')
    assert issues[0][1] == 2 and "not valid TOML" in issues[0][2]


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "missing.toml")
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(binary)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5), ("10m", 600), ("1h", 3600), ("7d", 604800), (5, 5), (2.5, 2.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "5", "-5s", "1y", True, None])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_sizes():
    assert parse_size("5GB") == 5_000_000_000
    assert parse_size("1GiB") == 2**30
    with pytest.raises(ValueError, match="size"):
        parse_size("lots")


@pytest.mark.parametrize(
    "uri",
    ["rtsp://cam/stream", "rtsps://cam:322/s", "rtmp://h/live/x", "srt://h:9000",
     "http://h/x.ts", "https://h/x.m3u8", "file:///tmp/x.mp4"],
)
def test_supported_uris(uri):
    assert validate_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [("ftp://h/x", "unsupported URI scheme"), ("cam/stream", "unsupported URI scheme"),
     ("file://relative/x.mp4", "absolute path"), ("rtsp://h/a b", "spaces"),
     ("rtsp://h:99999/x", "cannot be parsed"), ("", "empty")],
)
def test_bad_uris(uri, fragment):
    with pytest.raises(ValueError, match=fragment):
        validate_uri(uri)


def test_credentials_are_redacted():
    uri = "rtsp://admin:hunter2@10.0.0.5:554/live?token=abc123"
    shown = redact_uri(uri)
    assert "hunter2" not in shown and "abc123" not in shown and "admin:***@" in shown
    message = f"Could not connect to {uri}: hunter2 rejected"
    assert "hunter2" not in scrub(message, uri)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamwarden", *args],
                          capture_output=True, text=True, timeout=60)


def test_check_config_cli_ok_and_warns():
    result = run_cli("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK (2 stream(s))" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_config_cli_lists_every_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[app]\nremoval_threshold = "5 minutes"\n\n[[streams]]\nid = "x"\nuri = "rtsp://h/1"\n'
        '[[streams]]\nid = "x"\nuri = "mms://h/2"\n'
    )
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert f"{bad}:2: app.removal_threshold:" in lines[0]
    assert any(f"{bad}:8: streams[1].id: duplicate stream id 'x'" in ln for ln in lines)
    assert any(f"{bad}:9: streams[1].uri: unsupported URI scheme 'mms'" in ln for ln in lines)
    assert "3 problem(s) found" in lines[-1]
    assert "Traceback" not in result.stderr


def test_run_with_bad_config_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[streams]]\nid = 'a b'\nuri = 'rtsp://h/x'\n")
    result = run_cli("run", "--config", str(bad))
    assert result.returncode == 2
    assert "streams[0].id" in result.stderr and "Traceback" not in result.stderr


def test_stream_overrides_are_checked_against_limits():
    text = '[[streams]]\nid = "a"\nuri = "rtsp://h/x"\ntimeout = "0s"\n'
    [(_key, _line, message)] = issues_of(text)
    assert "streams[0] (a): timeout must be greater than 0" in message
    issues = issues_of('[stream_defaults]\nlatency = "1h"\n')
    assert "latency can be at most 10s" in issues[0][2]


# ---- environment references and file modes ---------------------------------------------------

ENV = {"CAM_PASSWORD": "s3cr:t", "HOST": "10.0.0.5", "TOKEN": "t" * 20, "EMPTY": ""}


def test_env_references_expand_in_string_values():
    text = ('[api]\ntoken = "${TOKEN}"\n\n[[streams]]\nid = "cam"\n'
            'uri = "rtsp://admin:${CAM_PASSWORD}@${HOST}/s?x=$$1&y=a$b${EMPTY}"\n')
    config = parse_config(text, "t.toml", environ=ENV)
    assert config.streams[0].uri == "rtsp://admin:s3cr:t@10.0.0.5/s?x=$1&y=a$b"
    assert config.api.token == "t" * 20
    assert parse_config('[[streams]]\nid = "a"\nuri = "rtsp://h/$${HOST}"\n',
                        environ=ENV).streams[0].uri == "rtsp://h/${HOST}"


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment"),
    [
        ('[[streams]]\nid = "a"\n\nuri = "rtsp://u:${NOPE}@h/x"\n', "streams[0].uri", 4,
         "environment variable NOPE is not set (referenced as ${NOPE})"),
        ('[api]\npublic_paths = ["/health",\n  "${NOPE}"]\n', "api.public_paths[1]", 2,
         "environment variable NOPE is not set"),
        ('[mqtt]\nhost = "h"\npassword = "${NOPE"\n', "mqtt.password", 3, "without a closing"),
        ('[mqtt]\nhost = "h"\npassword = "${1X}"\n', "mqtt.password", 3, "not a valid"),
    ],
)
def test_bad_env_references_name_key_and_line(text, key, line, fragment):
    issues = issues_of_env(text)
    assert [(k, n) for k, n, _ in issues] == [(key, line)], issues  # reported once
    assert fragment in issues[0][2]


def issues_of_env(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.toml", environ=ENV)
    return [(i.key, i.line, i.message) for i in info.value.issues]


def test_env_values_never_appear_in_error_messages():
    environ = {"LISTEN": "hunter2-not-a-listen", "URI": "ftp://u:hunter2@h/x"}
    text = '[api]\nlisten = "${LISTEN}"\n[[streams]]\nid = "a"\nuri = "${URI}"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.toml", environ=environ)
    assert "hunter2" not in str(info.value)
    assert "${LISTEN}" in str(info.value)  # the reference is shown instead


@pytest.mark.parametrize(
    ("text", "file_mode", "dir_mode"),
    [("", 0o600, 0o700), ('file_mode = "0640"\ndir_mode = "0750"', 0o640, 0o750),
     ('file_mode = "644"\ndir_mode = 0o755', 0o644, 0o755), ('file_mode = "0o600"', 0o600, 0o700)],
)
def test_recording_modes(text, file_mode, dir_mode):
    recording = parse_config(f"[recording]\n{text}\n").recording
    assert (recording.file_mode, recording.dir_mode) == (file_mode, dir_mode)


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [('file_mode = "rw-r-----"', "recording.file_mode", 'octal mode such as "0640"'),
     ("file_mode = 640", "recording.file_mode", "the number 640"),
     ('file_mode = "0666"', "recording.file_mode", "change recordings"),
     ('file_mode = "0400"', "recording.file_mode", "read and write"),
     ('file_mode = "0740"', "recording.file_mode", "executable"),
     ('dir_mode = "0770"', "recording.dir_mode", "add or delete"),
     ('dir_mode = "0600"', "recording.dir_mode", "owner rwx"),
     ('dir_mode = "04750"', "recording.dir_mode", "octal mode")],
)
def test_bad_recording_modes(text, key, fragment):
    [(found, line, message)] = issues_of(f"[recording]\n{text}\n")
    assert (found, line) == (key, 2) and fragment in message


def test_group_readable_files_in_private_directories_warn():
    config = parse_config('[recording]\nfile_mode = "0640"\n')
    assert any("dir_mode 0700" in w for w in config_warnings(config))
    assert not config_warnings(parse_config('[recording]\nfile_mode = "0640"\n'
                                            'dir_mode = "0750"\n'))


def test_allowed_file_dirs_must_be_absolute():
    [(key, line, message)] = issues_of('[api]\nallowed_file_dirs = ["clips"]\n')
    assert (key, line) == ("api.allowed_file_dirs[0]", 2) and "absolute" in message


def test_tiered_retention():
    config = parse_config('[recording]\nretention = "7d"\nevent_retention = "30d"\n', "t.toml")
    assert (config.recording.retention, config.recording.event_retention) == (7 * 86400,
                                                                              30 * 86400)
    same = parse_config('[recording]\nretention = "1d"\nevent_retention = "1d"\n', "t.toml")
    assert same.recording.event_retention == 86400


@pytest.mark.parametrize(("text", "fragment"), [
    ('retention = "30d"\nevent_retention = "7d"\n',
     "event_retention (7d) is shorter than retention (30d)"),
    ('event_retention = "30d"\n', "event_retention needs retention"),
    ('retention = "7d"\nevent_retention = "a month"\n', '"500ms", "5s", "10m", "1h"'),
])
def test_bad_tiered_retention(text, fragment):
    [(key, line, message)] = issues_of("[recording]\n" + text)
    assert key.startswith("recording") and line is not None and fragment in message, message


def test_a_duration_written_back_reads_as_itself():
    """A stored stream's settings are written with `format_duration` and read back: a
    value under a millisecond must not become 0 (it did: "0ms")."""
    from streamwarden.config.durations import format_duration, parse_duration

    for seconds in (0.0001, 0.2, 0.123456, 1.5, 60, 3600, 86400 * 7):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


def test_event_score_defaults_per_precision_and_model():
    """The built-in nanodet's measured default for the precision that runs (the nvidia
    backend runs fp32); any other model's objects are events at once; a set value wins."""
    from streamwarden.config.model import InferenceSection
    from streamwarden.inference.confirm import BUILTIN_EVENT_SCORE

    assert InferenceSection(precision="fp32").effective_event_score() == \
        BUILTIN_EVENT_SCORE["fp32"]
    assert InferenceSection(precision="int8").effective_event_score() == \
        BUILTIN_EVENT_SCORE["int8"]
    assert InferenceSection(precision="int8", backend="nvidia").effective_event_score() == \
        BUILTIN_EVENT_SCORE["fp32"]
    assert InferenceSection(model_path="/m.onnx").effective_event_score() == 0.0
    assert InferenceSection(plugin="pkg.mod:Det").effective_event_score() == 0.0
    assert InferenceSection(model="blazepose").effective_event_score() == 0.0
    assert InferenceSection(precision="int8", event_score=0.0).effective_event_score() == 0.0
    assert InferenceSection(model_path="/m.onnx",
                            event_score=0.6).effective_event_score() == 0.6
