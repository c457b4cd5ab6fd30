"""`streamwarden user add|passwd|remove|list`: keep the users file.

The file is `--file` (default `users.toml`) or, with `--config`, that config's `[users] file`,
whose `[users] hash` parameters new hashes then use. The password is asked for twice on a
terminal, or read as one line from standard input (`echo "$PW" | streamwarden user add ...`);
it never appears on the command line. Entries the service would refuse (a weak hash, an
unknown role) can still be fixed here: `passwd` and `remove` do not need the rest of the file
to be valid. The running service reads the file at start-up.

Exit codes: 0 done, 1 refused (the user exists, or does not), 2 bad input.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from streamwarden.config.loader import ConfigError, load_config
from streamwarden.config.model import UsersSection
from streamwarden.ids import STREAM_ID_HELP, is_valid_stream_id
from streamwarden.users.passwords import HashParams, Passwords, password_problem
from streamwarden.users.permissions import ROLES
from streamwarden.users.userfile import (
    USER_NAME_HELP,
    UserRecord,
    UsersFileError,
    check_user,
    is_valid_user_name,
    read_tables,
    user_table,
    write_tables,
)

OK, REFUSED, BAD_INPUT = 0, 1, 2


class _RefusedError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def add_user_commands(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="add, change, remove or list users (the users file)")
    verbs = user.add_subparsers(dest="verb", required=True)

    def where(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--file", "-f", help="the users file (default: users.toml)")
        p.add_argument("--config", "-c", help="take the file and hash settings from this "
                                              "config's [users] section")
        return p

    add = where(verbs.add_parser("add", help="add a user (asks for the password)"))
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument("--streams", help="comma-separated stream ids this user may see "
                                       "(default: every stream)")
    where(verbs.add_parser("passwd", help="set a user's password")).add_argument("name")
    where(verbs.add_parser("remove", help="remove a user")).add_argument("name")
    where(verbs.add_parser("list", help="list users, roles and streams"))


def run_user_command(args: argparse.Namespace) -> int:
    try:
        path, section = _settings(args)
        tables = read_tables(path)
        if args.verb == "list":
            _list(tables, section)
            return OK
        _change(args, path, section, tables)
        return OK
    except UsersFileError as exc:
        for line in exc.lines():
            print(f"streamwarden: {line}", file=sys.stderr)
        return BAD_INPUT
    except _RefusedError as exc:
        print(f"streamwarden: {exc}", file=sys.stderr)
        return exc.code


def _change(args: argparse.Namespace, path: Path, section: UsersSection,
            tables: dict) -> None:
    name = args.name
    if not is_valid_user_name(name):
        raise _RefusedError(BAD_INPUT, f"{name!r} is not a valid user name ({USER_NAME_HELP})")
    exists = name in tables
    if args.verb == "add" and exists:
        raise _RefusedError(REFUSED, f"user {name!r} exists (change its password with "
                                     "`passwd`, or `remove` it first)")
    if args.verb != "add" and not exists:
        raise _RefusedError(REFUSED, f"no user {name!r} in {path}")
    if args.verb == "remove":
        del tables[name]
        write_tables(path, tables)
        print(f"removed {name} (sessions it has open end when the service restarts)")
        return
    password_hash = Passwords(HashParams(**section.hash.model_dump())).hash(_read_password())
    if args.verb == "passwd":
        tables[name] = {**tables[name], "password_hash": password_hash}
    else:
        tables[name] = user_table(UserRecord(name, args.role, password_hash,
                                             _streams(args.streams)))
    write_tables(path, tables)
    print(f"{'added' if args.verb == 'add' else 'changed the password of'} {name} in {path} "
          "(restart the service to apply)")


def _settings(args: argparse.Namespace) -> tuple[Path, UsersSection]:
    if args.config and args.file:
        raise _RefusedError(BAD_INPUT, "give --file or --config, not both")
    if not args.config:
        return Path(args.file or "users.toml"), UsersSection()
    try:
        section = load_config(args.config).users
    except ConfigError as exc:
        raise _RefusedError(BAD_INPUT, f"{args.config}: {len(exc.issues)} problem(s); run "
                                       f"`streamwarden check-config {args.config}`") from None
    if not section.file:
        raise _RefusedError(BAD_INPUT, f"{args.config} has no [users] file")
    return Path(section.file), section


def _streams(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    ids = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    bad = [i for i in ids if not is_valid_stream_id(i)]
    if bad or not ids:
        raise _RefusedError(BAD_INPUT, f"--streams takes stream ids ({STREAM_ID_HELP}) "
                                       f"separated by commas; got {text!r}")
    return ids


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise _RefusedError(BAD_INPUT, "the two passwords differ")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if problem := password_problem(password):
        raise _RefusedError(BAD_INPUT, problem)
    return password


def _list(tables: dict, section: UsersSection) -> None:
    minimum = HashParams(**section.min_hash.model_dump())
    print(f"{'USER':<24} {'ROLE':<9} STREAMS")
    for name, table in sorted(tables.items()):
        role = table.get("role", "?") if isinstance(table, dict) else "?"
        streams = table.get("streams") if isinstance(table, dict) else None
        shown = ",".join(map(str, streams)) if isinstance(streams, list) else "(all)"
        _, problems = check_user(name, table, minimum)
        note = f"  REFUSED: {problems[0].split(': ', 1)[1]}" if problems else ""
        print(f"{name:<24} {role!s:<9} {shown}{note}")
