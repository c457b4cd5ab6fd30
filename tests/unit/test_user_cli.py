"""`streamwarden user add|passwd|remove|list` on a real file, the password from stdin."""

from __future__ import annotations

import io
import stat

import pytest

from streamwarden.cli import main
from streamwarden.users.passwords import HashParams, Passwords
from streamwarden.users.userfile import read_users

CHEAP = HashParams(1, 8, 1)


def run(monkeypatch, capsys, args: list[str], stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["user", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def config(tmp_path):
    """A config whose [users] section names the file and cheap hash parameters."""
    path = tmp_path / "c.toml"
    path.write_text(f'[users]\nfile = "{tmp_path / "users.toml"}"\n'
                    "hash = { time_cost = 1, memory_kib = 8, parallelism = 1 }\n"
                    "min_hash = { time_cost = 1, memory_kib = 8, parallelism = 1 }\n")
    return path


def test_add_list_passwd_remove(monkeypatch, capsys, tmp_path, config):
    users = tmp_path / "users.toml"
    c = ["--config", str(config)]
    assert run(monkeypatch, capsys, ["add", "alice", "--role", "viewer", "--streams",
                                     "front,yard", *c], "first password\n")[0] == 0
    assert run(monkeypatch, capsys, ["add", "olga", "--role", "operator", *c],
               "olgas password\n")[0] == 0
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert "first password" not in users.read_text()
    stored = read_users(users, CHEAP)
    assert stored["alice"].streams == ("front", "yard") and stored["olga"].streams is None
    assert Passwords(CHEAP).verify(stored["alice"].password_hash, "first password")

    code, out, _ = run(monkeypatch, capsys, ["list", *c])
    assert code == 0 and "alice" in out and "front,yard" in out and "(all)" in out

    assert run(monkeypatch, capsys, ["passwd", "alice", *c], "second password\n")[0] == 0
    assert Passwords(CHEAP).verify(read_users(users, CHEAP)["alice"].password_hash,
                                   "second password")
    assert run(monkeypatch, capsys, ["remove", "olga", *c])[0] == 0
    assert set(read_users(users, CHEAP)) == {"alice"}


def test_refusals_and_bad_input(monkeypatch, capsys, tmp_path, config):
    c = ["--config", str(config)]
    run(monkeypatch, capsys, ["add", "alice", *c], "first password\n")
    code, _, err = run(monkeypatch, capsys, ["add", "alice", *c], "other password\n")
    assert code == 1 and "exists" in err
    assert run(monkeypatch, capsys, ["remove", "nobody", *c])[0] == 1
    code, _, err = run(monkeypatch, capsys, ["add", "bob", *c], "short\n")
    assert code == 2 and "at least 8 characters" in err
    code, _, err = run(monkeypatch, capsys, ["add", "bad name", *c], "long enough\n")
    assert code == 2 and "not a valid user name" in err
    code, _, err = run(monkeypatch, capsys, ["add", "bob", "--streams", "a b", *c], "long pw!\n")
    assert code == 2 and "--streams" in err
    code, _, err = run(monkeypatch, capsys, ["add", "bob", "--file", "x", *c], "long pw!\n")
    assert code == 2 and "not both" in err
    assert set(read_users(tmp_path / "users.toml", CHEAP)) == {"alice"}


def test_a_refused_entry_can_still_be_fixed(monkeypatch, capsys, tmp_path, config):
    users = tmp_path / "users.toml"
    users.write_text('[users.carol]\nrole = "viewer"\npassword_hash = "plain-text-pw"\n')
    code, out, _ = run(monkeypatch, capsys, ["list", "--config", str(config)])
    assert code == 0 and "REFUSED" in out and "plain-text-pw" not in out
    assert run(monkeypatch, capsys, ["passwd", "carol", "--config", str(config)],
               "a real password\n")[0] == 0
    assert Passwords(CHEAP).verify(read_users(users, CHEAP)["carol"].password_hash,
                                   "a real password")


def test_default_file_and_hash(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert run(monkeypatch, capsys, ["add", "admin", "--role", "admin"],
               "the admin password\n")[0] == 0
    stored = read_users(tmp_path / "users.toml", HashParams(3, 65536, 4))
    assert stored["admin"].password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
