"""`[hooks]` and `[[webhooks]]` in the config file: what loads, what each stream runs, and every
bad input named with its key and line (a command that does not exist, a URL that is not
http(s), a secret too short, ...)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from streamwarden.config.hooks import program_problem
from streamwarden.config.loader import ConfigError, config_warnings, parse_config


def issues_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "t.toml")
    return [(i.key, i.line, i.message) for i in info.value.issues]


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "hook.sh"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_hooks_and_webhooks_load_with_per_stream_overrides(script):
    config = parse_config(f'''
[hooks]
on_segment_complete = ["{script}", "--fast"]
on_stream_lost = ["sh", "-c", "logger lost $STREAMWARDEN_STREAM_ID"]
timeout = "30s"
max_concurrent = 2

[hooks.streams.garage]
on_segment_complete = []
on_event_start = ["{script}", "garage"]

[[webhooks]]
url = "https://hooks.example.com/streamwarden?token=abc"
events = ["segment_complete", "event_end"]
secret = "0123456789abcdef"
streams = ["garage"]

[[webhooks]]
url = "http://127.0.0.1:9000/in"
name = "local"
''', "t.toml")
    hooks = config.hooks
    assert hooks.timeout == 30 and hooks.max_concurrent == 2 and hooks.configured
    assert hooks.command("segment_complete", "front") == [str(script), "--fast"]
    assert hooks.command("segment_complete", "garage") is None, "[] turns it off there"
    assert hooks.command("event_start", "garage") == [str(script), "garage"]
    assert hooks.command("event_start", "front") is None
    assert hooks.command("stream_lost", "garage")[0] == "sh", "not overridden: the global one"
    first, second = config.webhooks
    assert first.events == ["segment_complete", "event_end"] and first.streams == ["garage"]
    assert first.label == "hooks.example.com"
    assert "token" not in first.shown_url and first.shown_url.startswith("https://hooks.")
    assert second.label == "local" and len(second.events) == 9 and second.streams is None
    assert (second.timeout, second.max_attempts, second.backoff) == (10, 10, 1)
    warnings = config_warnings(config)
    assert any("hooks.streams.garage" in w and "through the API" in w for w in warnings)


def test_nothing_configured_builds_nothing():
    config = parse_config("[hooks]\ntimeout = 5\n[hooks.streams.cam]\non_stream_ready = []\n")
    assert not config.hooks.configured and config.webhooks == []


def test_a_hook_command_that_does_not_exist_is_a_config_error(tmp_path, script):
    plain = tmp_path / "plain.txt"
    plain.write_text("not a program")
    issues = issues_of(f'''[hooks]
on_segment_complete = ["/usr/local/bin/no-such-upload", "--fast"]
on_stream_ready = ["no-such-program-on-path"]
on_event_end = ["{plain}"]
on_disk_full = ["{tmp_path}"]
on_stream_failed = ["", "x"]
on_event_start = "{script} --fast"
[hooks.streams.cam]
on_stream_lost = ["./no/such/relative"]
''')
    by_key = {key: (line, message) for key, line, message in issues}
    assert by_key["hooks.on_segment_complete"] == (
        2, "'/usr/local/bin/no-such-upload' does not exist")
    line, message = by_key["hooks.on_stream_ready"]
    assert line == 3 and "'no-such-program-on-path' is not on PATH" in message
    assert "give its full path" in message
    assert by_key["hooks.on_event_end"] == (4, f"'{plain}' is not an executable file")
    assert by_key["hooks.on_disk_full"] == (5, f"'{tmp_path}' is not an executable file")
    assert "empty" in by_key["hooks.on_stream_failed"][1]
    line, message = by_key["hooks.on_event_start"]
    assert line == 7 and "a hook command is a list" in message and '"sh", "-c"' in message
    assert by_key["hooks.streams.cam.on_stream_lost"] == (
        9, "'./no/such/relative' does not exist")
    assert len(issues) == 7


def test_program_lookup_follows_path(tmp_path, script):
    assert program_problem(script.name, path=str(script.parent)) is None
    assert program_problem("sh") is None
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)  # no x bit: not even root may run it
    assert program_problem(str(script)) == f"{str(script)!r} is not an executable file"


@pytest.mark.parametrize(("text", "key", "fragment"), [
    ('[[webhooks]]\nurl = "ftp://example.com/in"\n', "webhooks[0].url",
     "must be http:// or https://, not 'ftp'"),
    ('[[webhooks]]\nurl = "example.com/in"\n', "webhooks[0].url", "not '(none)'"),
    ('[[webhooks]]\nurl = "file:///tmp/x"\n', "webhooks[0].url", "not 'file'"),
    ('[[webhooks]]\nurl = "https:///in"\n', "webhooks[0].url", "needs a host"),
    ('[[webhooks]]\nurl = "https://h:99999/in"\n', "webhooks[0].url", "cannot be parsed"),
    ('[[webhooks]]\nurl = "https://h/in"\nevents = ["segment_done"]\n', "webhooks[0].events[0]",
     "'segment_complete'"),
    ('[[webhooks]]\nurl = "https://h/in"\nevents = []\n', "webhooks[0].events", "at least 1"),
    ('[[webhooks]]\nurl = "https://h/in"\nsecret = "short"\n', "webhooks[0].secret",
     "at least 16"),
    ('[[webhooks]]\nurl = "https://h/in"\nbackoff = 0\n', "webhooks[0]", "greater than 0"),
    ('[[webhooks]]\nurl = "https://h/in"\nbackoff = "1m"\nmax_backoff = "10s"\n', "webhooks[0]",
     "max_backoff cannot be less than backoff"),
    ('[[webhooks]]\nurl = "https://h/in"\nstreams = ["bad id"]\n', "webhooks[0].streams[0]",
     "not a valid stream id"),
    ('[[webhooks]]\nurl = "https://h/in"\nretries = 3\n', "webhooks[0].retries", "unknown key"),
    ('[hooks]\ntimeout = 0\n', "hooks", "greater than 0"),
    ('[hooks]\nmax_concurrent = 0\n', "hooks.max_concurrent", "greater than or equal to 1"),
    ('[hooks]\non_segment_closed = ["sh"]\n', "hooks.on_segment_closed", "unknown key"),
    ('[hooks.streams."bad id"]\non_stream_ready = ["sh"]\n', "hooks.streams.bad id.[key]",
     "'bad id' is not a valid stream id"),
])
def test_bad_hook_and_webhook_settings(text, key, fragment):
    issues = issues_of(text)
    assert key in [k for k, _, _ in issues], issues
    assert fragment in next(m for k, _, m in issues if k == key), issues


def test_two_webhooks_must_not_share_a_name():
    issues = issues_of('[[webhooks]]\nurl = "https://h/a"\n[[webhooks]]\nurl = "https://h/b"\n')
    assert len(issues) == 1 and "give each a distinct `name`" in issues[0][2]
    config = parse_config('[[webhooks]]\nurl = "https://h/a"\n'
                          '[[webhooks]]\nurl = "https://h/b"\nname = "second"\n')
    assert [w.label for w in config.webhooks] == ["h", "second"]


def test_a_secret_from_the_environment_is_never_shown():
    issues = issues_of('[[webhooks]]\nurl = "https://h/a"\nsecret = "${HOOK_SECRET}"\n')
    assert [(k, n) for k, n, _ in issues] == [("webhooks[0].secret", 3)]
    assert "HOOK_SECRET is not set" in issues[0][2]
    text = '[[webhooks]]\nurl = "https://h/a"\nsecret = "${HOOK_SECRET}"\n'
    config = parse_config(text, environ={"HOOK_SECRET": "s" * 20})
    assert config.webhooks[0].secret == "s" * 20
    with pytest.raises(ConfigError) as info:
        parse_config(text, environ={"HOOK_SECRET": "tiny"})
    assert "tiny" not in str(info.value)
