"""The plain parts of a config reload: redaction for `GET /config`, the file watch, and
reading the file again the way start-up did (command-line overrides, the environment token)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streamwarden.config.loader import ConfigError
from streamwarden.config.model import ApiSection, Config, MqttSection, RestreamSection
from streamwarden.config.redact import MASK, redact
from streamwarden.config.source import ConfigFile, apply_overrides, with_environment_token
from streamwarden.config.watch import FileWatch


def test_redact_masks_secrets_and_redacts_uris():
    config = Config(api=ApiSection(token="t" * 20),
                    restream=RestreamSection(user="reader", password="hunter2"),
                    mqtt=MqttSection(host="broker", username="u", password="mqttpw"))
    shown = redact(config.model_dump(mode="json"))
    assert shown["api"]["token"] == MASK
    assert shown["restream"] == {**shown["restream"], "user": "reader", "password": MASK}
    assert shown["mqtt"]["password"] == MASK and shown["mqtt"]["username"] == "u"
    assert shown["api"]["listen"] == "127.0.0.1:8080"  # the rest as it is
    text = repr(shown)
    assert "hunter2" not in text and "mqttpw" not in text and "t" * 20 not in text


def test_redact_goes_by_key_name_through_lists_and_new_sections():
    data = {"streams": [{"id": "a", "uri": "rtsp://admin:s3cret@cam/x?token=abc"}],
            "webhooks": {"urls": ["https://h/x?secret=zz"], "hmac_secret": "k"},
            "users": [{"name": "ann", "password_hash": "$argon2id$..."}],
            "unset": {"token": None}, "flag": {"secret": True}}
    shown = redact(data)
    assert shown["streams"][0]["uri"] == "rtsp://admin:***@cam/x?token=***"
    assert shown["webhooks"] == {"urls": ["https://h/x?secret=***"], "hmac_secret": MASK}
    assert shown["users"][0] == {"name": "ann", "password_hash": MASK}
    assert shown["unset"] == {"token": None} and shown["flag"] == {"secret": True}


def write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_watch_sees_content_changes_only(tmp_path):
    path = tmp_path / "c.toml"
    write(path, "a = 1\n", 1_000_000_000)
    watch = FileWatch(path)
    watch.loaded("a = 1\n")
    assert not watch.poll()  # the content start-up loaded
    write(path, "a = 1\n", 2_000_000_000)  # touched, same content
    assert not watch.poll()
    write(path, "a = 2\n", 3_000_000_000)
    assert watch.poll()
    assert not watch.poll()  # nothing new since (stat unchanged: the file is not read)
    watch.loaded("a = 2\n")  # the reload loaded it
    replacement = tmp_path / "new.toml"  # an editor that saves by renaming
    write(replacement, "a = 3\n", 3_000_000_000)
    replacement.replace(path)
    assert watch.poll()


def test_watch_reports_a_broken_file_once_and_survives_it_going_away(tmp_path):
    path = tmp_path / "c.toml"
    write(path, "good\n", 1_000_000_000)
    watch = FileWatch(path)
    watch.loaded("good\n")
    write(path, "broken\n", 2_000_000_000)
    assert watch.poll()
    watch.loaded("broken\n")  # the reload read it and refused it
    assert not watch.poll()  # not again every second
    path.unlink()
    assert not watch.poll()
    write(path, "broken\n", 2_000_000_000)  # back, same content as refused
    assert not watch.poll()


def test_config_file_reapplies_overrides_and_the_environment_token(tmp_path, monkeypatch):
    path = tmp_path / "c.toml"
    path.write_text('[api]\nlisten = "127.0.0.1:8080"\n[[streams]]\nid = "a"\n'
                    'uri = "rtsp://10.0.0.1/a"\n')
    monkeypatch.setenv("STREAMWARDEN_API_TOKEN", "e" * 24)
    source = ConfigFile(path, {"api": {"listen": "127.0.0.1:9000"}, "app": {}})
    config = source.parse(source.read())
    assert config.api.listen == "127.0.0.1:9000" and config.api.token == "e" * 24
    assert [s.id for s in config.streams] == ["a"]


def test_config_file_errors_keep_their_lines(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[streams]]\nid = "a"\nuri = "ftp://x/y"\n\n[app]\nbogus = 1\n')
    source = ConfigFile(path)
    with pytest.raises(ConfigError) as info:
        source.parse(source.read())
    assert sorted((i.line, i.key) for i in info.value.issues) == [(3, "streams[0].uri"),
                                                                  (6, "app.bogus")]
    with pytest.raises(ConfigError, match="cannot read the file"):
        ConfigFile(tmp_path / "missing.toml").read()


def test_overrides_and_environment_token_helpers():
    config = apply_overrides(Config(), {"app": {"log_level": "debug"}, "api": {}})
    assert config.app.log_level == "debug" and config.api == ApiSection()
    assert with_environment_token(config, {}).api.token is None
    assert with_environment_token(config, {"STREAMWARDEN_API_TOKEN": "x" * 16}).api.token \
        == "x" * 16
    own = Config(api=ApiSection(token="f" * 16))  # the file's own token wins
    assert with_environment_token(own, {"STREAMWARDEN_API_TOKEN": "x" * 16}) is own
