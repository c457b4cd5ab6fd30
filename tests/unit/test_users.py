"""Users and roles without a service: the permission table, stream lists, message filtering,
password hashes (weak and malformed ones refused by user), the users file, sessions, URL
tokens and the login backoff on a fake clock."""

from __future__ import annotations

import os
import stat

import pytest

from streamwarden.config.loader import ConfigError, parse_config
from streamwarden.users.accounts import Accounts
from streamwarden.users.backoff import BackoffPolicy, LoginBackoff
from streamwarden.users.passwords import HashParams, Passwords, hash_problem, password_problem
from streamwarden.users.permissions import (
    EVERYONE,
    Action,
    Principal,
    filter_message,
    patch_actions,
)
from streamwarden.users.sessions import Sessions, UrlSigner
from streamwarden.users.userfile import (
    UserRecord,
    UsersFileError,
    parse_users,
    read_users,
    write_users,
)

FAST = HashParams(time_cost=1, memory_kib=8, parallelism=1)  # tests only: configured, as below
FLOOR = HashParams(time_cost=1, memory_kib=8, parallelism=1)


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


# ---- the permission table ----------------------------------------------------------------

def test_roles_grant_what_the_issue_says():
    viewer, operator, admin = (Principal("v", "viewer"), Principal("o", "operator"),
                               Principal("a", "admin"))
    reads = (Action.VIEW, Action.RECORDINGS, Action.EVENTS, Action.SESSION)
    assert all(viewer.may(a) for a in reads)
    assert not any(viewer.may(a) for a in (Action.RECORD, Action.DETECT, Action.CONFIGURE,
                                            Action.METRICS))
    assert operator.may(Action.RECORD) and operator.may(Action.DETECT)
    assert not operator.may(Action.CONFIGURE)
    assert all(admin.may(a) for a in Action) and all(EVERYONE.may(a) for a in Action)
    assert viewer.actions() == ["events", "recordings", "session", "view"]


def test_a_stream_list_limits_streams_and_whole_service_actions():
    limited = Principal("o", "operator", frozenset({"front"}))
    assert limited.sees("front") and not limited.sees("back")
    assert limited.may(Action.RECORD)
    assert not limited.may(Action.METRICS)  # /metrics shows every stream: not for a list
    assert Principal("o", "operator").may(Action.METRICS)
    with pytest.raises(ValueError, match="admin acts on every stream"):
        Principal("a", "admin", frozenset({"front"}))
    with pytest.raises(ValueError, match="unknown role"):
        Principal("x", "root")  # type: ignore[arg-type]


def test_stream_changes_need_the_action_of_each_field():
    operator = Principal("o", "operator")
    assert patch_actions(["enable_inference"]) == {Action.DETECT}
    assert patch_actions(["enable_recording", "uri"]) == {Action.RECORD, Action.CONFIGURE}
    assert operator.may_change(["enable_inference", "enable_recording"])
    assert not operator.may_change(["enable_recording", "timeout"])
    assert not Principal("v", "viewer").may_change(["enable_recording"])


def test_messages_are_filtered_to_the_streams_a_user_sees():
    limited = Principal("v", "viewer", frozenset({"front"}))
    assert filter_message({"type": "state", "stream_id": "back"}, limited) is None
    assert filter_message({"type": "state", "stream_id": "front"}, limited) == {
        "type": "state", "stream_id": "front"}
    stats = {"type": "stats", "streams": [{"id": "front"}, {"id": "back"}]}
    assert filter_message(stats, limited) == {"type": "stats", "streams": [{"id": "front"}]}
    assert stats["streams"] == [{"id": "front"}, {"id": "back"}]  # others' copy untouched
    assert filter_message({"type": "dropped"}, limited) == {"type": "dropped"}
    assert filter_message(stats, Principal("v", "viewer")) is stats


# ---- password hashes -----------------------------------------------------------------------

def test_hash_and_verify():
    passwords = Passwords(FAST)
    stored = passwords.hash("correct horse")
    assert stored.startswith("$argon2id$") and "correct" not in stored
    assert passwords.verify(stored, "correct horse")
    assert not passwords.verify(stored, "correct horsE")
    assert not passwords.verify("garbage", "correct horse")
    assert hash_problem(stored, FLOOR) is None


@pytest.mark.parametrize(("stored", "words"), [
    ("hunter2hunter2", "plain-text"),
    ("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "$2b$"),
    ("$6$salt$IxDD3jeSOb5eB1CX5LBsqZFVkJdido3OUILO5Ifz5iwMuTS4XMS130MTSuDDl3aCI6WouIL9AjRbLCelDCy.g.",
     "$6$"),
    ("$argon2id$v=19$m=8,t=1,p=1$5DqMDm", "malformed"),
    ("$argon2id$v=19$m=8,t=1,p=1$$", "malformed"),
    ("$argon2i$v=19$m=8,t=1,p=1$5DqMDm+OEWu9i0KejCvNBA$abGeTRNFKafTR9qviwgAaEDDy9Ns0vVNwEtdayrNwsQ",
     "argon2i hash"),
])
def test_weak_or_malformed_hashes_are_refused(stored, words):
    problem = hash_problem(stored, FLOOR)
    assert problem is not None and words in problem
    assert stored not in problem  # never repeats what it refused (it may be a password)


def test_a_hash_below_the_minimum_is_weak():
    stored = Passwords(FAST).hash("correct horse")
    problem = hash_problem(stored, HashParams(time_cost=2, memory_kib=19456, parallelism=1))
    assert problem is not None and "weaker" in problem and "min_hash" in problem


def test_new_passwords_need_some_length():
    assert password_problem("short") is not None
    assert password_problem(" padded password ") is not None
    assert password_problem("long enough") is None


# ---- the users file -------------------------------------------------------------------------

def test_users_file_round_trip_is_private(tmp_path):
    path = tmp_path / "users.toml"
    stored = Passwords(FAST).hash("correct horse")
    previous = os.umask(0o022)  # the writer sets 0600 itself
    try:
        write_users(path, [UserRecord("bob", "operator", stored),
                           UserRecord("alice", "viewer", stored, ("front", "yard"))])
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = read_users(path, FLOOR)
    assert users["alice"] == UserRecord("alice", "viewer", stored, ("front", "yard"))
    assert users["bob"].principal() == Principal("bob", "operator", None)
    assert path.read_text().index("[users.alice]") < path.read_text().index("[users.bob]")


def test_users_file_problems_name_each_user(tmp_path):
    good = Passwords(FAST).hash("correct horse")
    data = {"users": {
        "carol": {"role": "viewer", "password_hash": "hunter2hunter2"},
        "dave": {"role": "viewer", "password_hash": "$argon2id$v=19$m=8,t=1,p=1$xx"},
        "erin": {"role": "root", "password_hash": good},
        "frank": {"role": "admin", "password_hash": good, "streams": ["front"]},
        "gina": {"role": "viewer", "password_hash": good, "streams": ["no spaces"],
                 "colour": "red"},
        "bad name": {"role": "viewer", "password_hash": good},
        "ok": {"role": "viewer", "password_hash": good},
    }}
    with pytest.raises(UsersFileError) as info:
        parse_users(data, FLOOR, "users.toml")
    text = "\n".join(info.value.lines())
    assert "user 'carol': password_hash is not a password hash (it looks like a plain-text" in text
    assert "streamwarden user passwd carol" in text
    assert "user 'dave': password_hash is a malformed argon2" in text
    assert "user 'erin': role:" in text
    assert "user 'frank': an admin acts on every stream" in text
    assert "user 'gina': streams.0:" in text and "user 'gina': colour: unknown key" in text
    assert "user 'bad name': not a valid user name" in text
    assert "'ok'" not in text and "hunter2" not in text
    assert all(line.startswith("users.toml: ") for line in info.value.lines())


def test_unreadable_users_files_are_clear_errors(tmp_path):
    with pytest.raises(UsersFileError, match="no such file"):
        read_users(tmp_path / "missing.toml", FLOOR)
    broken = tmp_path / "broken.toml"
    broken.write_text("[users.alice\nrole = 1\n")
    with pytest.raises(UsersFileError, match=r"not valid TOML.*line 1"):
        read_users(broken, FLOOR)


def test_accounts_answer_alike_for_unknown_users_and_wrong_passwords():
    stored = Passwords(FAST).hash("correct horse")
    accounts = Accounts({"alice": UserRecord("alice", "viewer", stored, ("front",))}, FAST)
    assert accounts.authenticate("alice", "correct horse") == Principal(
        "alice", "viewer", frozenset({"front"}))
    assert accounts.authenticate("alice", "wrong horse") is None
    assert accounts.authenticate("nobody", "correct horse") is None
    assert not Accounts({}, FAST) and accounts


# ---- configuration ----------------------------------------------------------------------------

def test_users_section_is_validated():
    config = parse_config('[users]\nfile = "users.toml"\nsession_ttl = "1h"\n', "t.toml")
    assert config.users.file == "users.toml" and config.users.session_ttl == 3600
    assert config.users.hash.memory_kib == 65536 and config.users.min_hash.memory_kib == 19456
    with pytest.raises(ConfigError) as info:
        parse_config("[users]\nhash = { memory_kib = 1024 }\n", "t.toml")
    assert "weaker than min_hash" in str(info.value.issues[0].message)
    with pytest.raises(ConfigError):
        parse_config("[users]\nsession_ttl = \"1s\"\n", "t.toml")


# ---- sessions and URL tokens -------------------------------------------------------------------

def test_sessions_expire_and_close():
    clock = Clock()
    sessions = Sessions(ttl=60, clock=clock)
    alice = Principal("alice", "viewer")
    token, session = sessions.open(alice)
    assert sessions.find(token) == session and sessions.by_sid(session.sid) == session
    assert token not in session.sid  # the id names the session without being its secret
    assert sessions.find(token + "x") is None
    clock.now += 61
    assert sessions.find(token) is None and len(sessions) == 0
    token, session = sessions.open(alice)
    sessions.close(session.sid)
    assert sessions.find(token) is None
    sessions.open(alice)
    sessions.open(Principal("bob", "viewer"))
    assert sessions.close_user("alice") == 1 and len(sessions) == 1


def test_sessions_are_bounded():
    clock = Clock()
    sessions = Sessions(ttl=60, clock=clock, max_sessions=3)
    first, _ = sessions.open(EVERYONE)
    for _ in range(3):
        clock.now += 1
        sessions.open(EVERYONE)
    assert len(sessions) == 3 and sessions.find(first) is None


def test_url_tokens_are_bound_to_path_session_and_time():
    clock = Clock()
    signer = UrlSigner(b"k" * 32, clock=clock)
    token = signer.sign("/ws", "abc123", clock.now + 30)
    assert signer.check("/ws", token) == "abc123"
    assert signer.check("/streams", token) is None
    assert UrlSigner(b"j" * 32, clock=clock).check("/ws", token) is None
    expires, sid, mac = token.split(".")
    assert signer.check("/ws", f"{expires}.other.{mac}") is None
    assert signer.check("/ws", f"{int(expires) + 100}.{sid}.{mac}") is None
    for garbage in ("", "...", "x.y.z", "1.2"):
        assert signer.check("/ws", garbage) is None
    clock.now += 31
    assert signer.check("/ws", token) is None


# ---- login backoff -----------------------------------------------------------------------------

def test_failed_logins_slow_one_address_and_not_another():
    clock = Clock()
    backoff = LoginBackoff(BackoffPolicy(free_failures=3, first_delay=1, max_delay=8), clock)
    for _ in range(3):
        assert backoff.attempt("10.0.0.1") == 0
    assert backoff.attempt("10.0.0.1") == 0  # the 4th may try, and will then wait 1 s
    assert backoff.attempt("10.0.0.1") == pytest.approx(1)
    assert backoff.attempt("10.0.0.2") == 0  # another address is not slowed
    clock.now += 1
    assert backoff.attempt("10.0.0.1") == 0
    assert backoff.attempt("10.0.0.1") == pytest.approx(2)  # doubling
    waits = []
    for _ in range(5):
        clock.now += 100
        backoff.attempt("10.0.0.1")
        waits.append(backoff.attempt("10.0.0.1"))
    assert waits == [pytest.approx(4), pytest.approx(8), pytest.approx(8), pytest.approx(8),
                     pytest.approx(8)]
    assert backoff.refused == 7


def test_a_success_forgives_and_a_burst_cannot_slip_through():
    clock = Clock()
    backoff = LoginBackoff(BackoffPolicy(free_failures=2, first_delay=5), clock)
    # attempts count when they start: a burst of parallel guesses is cut after the free ones
    results = [backoff.attempt("a") for _ in range(5)]
    assert results[:3] == [0, 0, 0] and all(r > 0 for r in results[3:])
    backoff.succeeded("a")
    assert backoff.failures("a") == 0 and backoff.attempt("a") == 0


def test_the_backoff_forgets_and_is_bounded():
    clock = Clock()
    backoff = LoginBackoff(BackoffPolicy(forget_after=60, max_clients=100), clock)
    for n in range(250):
        backoff.attempt(f"10.0.{n // 250}.{n % 250}")
    assert len(backoff) == 100
    clock.now += 61
    backoff.attempt("10.9.9.9")
    assert len(backoff) == 1
