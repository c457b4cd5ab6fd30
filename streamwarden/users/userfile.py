"""The users file: one TOML table per user, written by `streamwarden user ...`, mode 0600.

    [users.alice]
    role = "viewer"                 # admin, operator or viewer
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$…"
    streams = ["front", "yard"]     # optional: only these streams; omitted: every stream

Reading it checks everything and reports every problem at once, each naming its user: an
unknown role or key, a stream id that cannot be one, a hash that is weak or malformed (see
passwords.py). Writing replaces the file atomically (a temporary file, then a rename), so a
crash never leaves half a file, and the result is 0600 whatever the umask.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tomli_w
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from streamwarden.ids import validate_stream_id
from streamwarden.private_files import PRIVATE_FILE, others_can_read
from streamwarden.users.passwords import HashParams, hash_problem
from streamwarden.users.permissions import Principal, Role

log = logging.getLogger("streamwarden.users")

USER_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}"
USER_NAME_HELP = ("1-64 letters, digits, '_', '.', '@' or '-', starting with a letter or "
                  "digit")
_HEADER = ("# streamwarden users: change with `streamwarden user add|passwd|remove`.\n"
           "# Keep this file private (mode 0600): it holds password hashes.\n\n")


def is_valid_user_name(name: str) -> bool:
    return re.fullmatch(USER_NAME_PATTERN, name) is not None


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: Role
    password_hash: str
    streams: tuple[str, ...] | None = None

    def principal(self) -> Principal:
        return Principal(self.name, self.role,
                         None if self.streams is None else frozenset(self.streams))


class UsersFileError(Exception):
    """The users file cannot be used: every problem, one line each."""

    def __init__(self, path: Path | str, problems: list[str]):
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = Path(path)
        self.problems = problems

    def lines(self) -> list[str]:
        return [f"{self.path}: {problem}" for problem in self.problems]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    password_hash: str
    streams: list[Annotated[str, AfterValidator(validate_stream_id)]] | None = None


def read_users(path: Path | str, minimum: HashParams) -> dict[str, UserRecord]:
    """Every user in the file; UsersFileError (all problems, by user) if any is unusable."""
    path = Path(path)
    if not path.is_file():
        raise UsersFileError(path, ["no such file (create it with `streamwarden user add`)"])
    tables = read_tables(path)
    if others_can_read(path):
        log.warning("the users file %s is readable by other users: chmod 600 it", path)
    return parse_users({"users": tables}, minimum, path)


def parse_users(data: dict[str, Any], minimum: HashParams,
                path: Path | str = "users file") -> dict[str, UserRecord]:
    problems = [f"unknown top-level key {key!r} (users go in [users.NAME] tables)"
                for key in data if key != "users"]
    tables = data.get("users", {})
    if not isinstance(tables, dict):
        raise UsersFileError(path, ["'users' must be a table of [users.NAME] tables"])
    users: dict[str, UserRecord] = {}
    for name, table in tables.items():
        record, found = check_user(name, table, minimum)
        problems += found
        if record is not None:
            users[name] = record
    if problems:
        raise UsersFileError(path, problems)
    return users


def check_user(name: str, table: Any, minimum: HashParams
                ) -> tuple[UserRecord | None, list[str]]:
    """One user's record, or the problems with it (each naming the user, never the hash)."""
    who = f"user {name!r}"
    if not is_valid_user_name(name):
        return None, [f"{who}: not a valid user name ({USER_NAME_HELP})"]
    if not isinstance(table, dict):
        return None, [f"{who}: must be a table ([users.{name}])"]
    try:
        entry = _Entry.model_validate(table)
    except ValidationError as exc:
        return None, [f"{who}: {_describe(err)}" for err in exc.errors()]
    if problem := hash_problem(entry.password_hash, minimum):
        return None, [f"{who}: password_hash {problem}; set a new password with "
                      f"`streamwarden user passwd {name}`"]
    streams = None if entry.streams is None else tuple(entry.streams)
    record = UserRecord(name, entry.role, entry.password_hash, streams)
    try:
        record.principal()
    except ValueError as exc:
        return None, [f"{who}: {exc}"]
    return record, []


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err.get("loc", ())) or "entry"
    if err.get("type") == "extra_forbidden":
        return f"{where}: unknown key (use role, password_hash, streams)"
    if err.get("type") == "missing":
        return f"{where}: required"
    return f"{where}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}"


def user_table(user: UserRecord) -> dict[str, Any]:
    table: dict[str, Any] = {"role": user.role, "password_hash": user.password_hash}
    if user.streams is not None:
        table["streams"] = list(user.streams)
    return table


def write_users(path: Path | str, users: Iterable[UserRecord]) -> None:
    """Replace the file with `users`, atomically, mode 0600."""
    write_tables(path, {user.name: user_table(user) for user in users})


def read_tables(path: Path | str) -> dict[str, Any]:
    """The file's user tables as they are, unchecked (for the CLI, which must be able to fix
    a user whose entry the service refuses); {} if the file does not exist yet."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(path, [f"cannot read it: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsersFileError(path, [f"not valid TOML: {exc}"]) from None
    tables = data.get("users", {})
    if not isinstance(tables, dict) or set(data) - {"users"}:
        raise UsersFileError(path, ["expected only [users.NAME] tables"])
    return tables


def write_tables(path: Path | str, tables: dict[str, Any]) -> None:
    """Replace the file with these user tables (sorted by name), atomically, mode 0600."""
    path = Path(path)
    text = _HEADER + tomli_w.dumps({"users": dict(sorted(tables.items()))})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
