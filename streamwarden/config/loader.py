"""Load a TOML config and report every problem with the key path and line that is wrong.

`tomllib` keeps no positions and pydantic only knows key paths, so a small scanner maps each
key path (`streams[1].uri`) back to the line it was written on. All problems are collected and
reported together, so an operator fixes a file in one pass instead of one error per run.
String values may reference environment variables (`${CAM_PASSWORD}`); an unset one is reported
like any other problem, and no message shows a value that came from the environment.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from streamwarden.config.envvars import Expansion, expand_env
from streamwarden.config.filemode import format_mode
from streamwarden.config.model import Config

_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(#.*)?$")
_BARE_OR_QUOTED = r"""(?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)"""
_KEY = re.compile(rf"^\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: where (dotted key path and line) and what, in words an operator can act on."""

    key: str
    line: int | None
    message: str

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ConfigError(Exception):
    def __init__(self, source: str, issues: list[ConfigIssue]):
        self.source = source
        self.issues = issues
        super().__init__("\n".join(issue.format(source) for issue in issues))


def _split_key(text: str) -> list[str]:
    parts = re.findall(r'"[^"]*"|\'[^\']*\'|[^.\s]+', text)
    return [p.strip("\"'") for p in parts]


def key_lines(text: str) -> dict[Loc, int]:
    """Map each table and key path in the TOML text to its 1-based line number."""
    lines: dict[Loc, int] = {}
    counters: dict[tuple[str, ...], int] = {}
    current: Loc = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _ARRAY_TABLE.match(line):
            name = tuple(_split_key(match.group(1)))
            index = counters.get(name, -1) + 1
            counters[name] = index
            current = (*name, index)
            lines.setdefault(current, number)
        elif match := _TABLE.match(line):
            current = tuple(_split_key(match.group(1)))
            lines.setdefault(current, number)
        elif match := _KEY.match(line):
            lines.setdefault((*current, *_split_key(match.group(1))), number)
    return lines


def _locate(lines: dict[Loc, int], loc: Loc) -> int | None:
    for end in range(len(loc), -1, -1):
        if (line := lines.get(tuple(loc[:end]))) is not None:
            return line
    return None


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see docs/configuration.md for the keys)"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    return message


def _duplicate_ids(data: dict[str, Any], lines: dict[Loc, int]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    streams = data.get("streams")
    if not isinstance(streams, list):
        return issues
    first_index: dict[str, int] = {}
    for index, stream in enumerate(streams):
        if not isinstance(stream, dict) or not isinstance(stream.get("id"), str):
            continue
        sid = stream["id"]
        if sid in first_index:
            loc: Loc = ("streams", index, "id")
            issues.append(
                ConfigIssue(
                    format_loc(loc),
                    _locate(lines, loc),
                    f"duplicate stream id {sid!r} (first used at streams[{first_index[sid]}])",
                )
            )
        else:
            first_index[sid] = index
    return issues


def _conceal(expansion: Expansion, loc: Loc, message: str) -> str:
    """The message with every secret expanded into `loc` (or below it) shown as `${NAME}`."""
    for secret_loc in expansion.secrets:
        if secret_loc[:len(loc)] == loc:
            message = expansion.conceal(secret_loc, message)
    return message


def parse_config(text: str, source: str = "<config>",
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate TOML text into a Config or raise ConfigError listing every problem.

    `${NAME}` in string values is replaced by the environment variable (`environ`, by default
    the process environment) before validation; see streamwarden.config.envvars.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(source, [ConfigIssue("", line, f"not valid TOML: {exc}")]) from None
    lines = key_lines(text)
    expansion = expand_env(data, os.environ if environ is None else environ)
    data = expansion.data
    issues = [ConfigIssue(format_loc(p.loc), _locate(lines, p.loc), p.message)
              for p in expansion.problems]
    unexpanded = {p.loc for p in expansion.problems}  # already reported: no second error
    issues += _duplicate_ids(data, lines)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = _conceal(expansion, loc, _message(dict(error)))
            if (not loc and message.startswith("duplicate stream id")) or loc in unexpanded:
                continue  # already reported with its line by _duplicate_ids / expand_env
            issues.append(ConfigIssue(format_loc(loc), _locate(lines, loc), message))
        config = None
    if issues:
        raise ConfigError(source, issues)
    assert config is not None
    return config


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; unreadable files are a ConfigError too."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, [ConfigIssue("", None, f"cannot read the file: {exc}")]) from None
    return parse_config(text, source)


def nvidia_available() -> bool:
    """True when an NVIDIA driver is visible (device node or nvidia-smi)."""
    return os.path.exists("/dev/nvidiactl") or shutil.which("nvidia-smi") is not None


def config_warnings(config: Config) -> list[str]:
    """Things that load but will not work as written here; reported, never fatal."""
    warnings = []
    if config.inference.backend == "nvidia" and not nvidia_available():
        warnings.append(
            "inference.backend is 'nvidia' but no NVIDIA GPU/driver was found: "
            "inference will fall back to the CPU backend"
        )
    rec = config.recording
    if rec.file_mode & 0o040 and not rec.dir_mode & 0o010:
        warnings.append(f"recording.file_mode {format_mode(rec.file_mode)} lets the group read "
                        f"recordings, but dir_mode {format_mode(rec.dir_mode)} keeps it out of "
                        "their directories (use 0750)")
    if config.inference.config_path and not os.path.exists(config.inference.config_path):
        warnings.append(f"inference.config_path {config.inference.config_path!r} does not exist")
    in_file = {s.id for s in config.streams}
    warnings += [f"hooks.streams.{sid}: no stream {sid!r} in this file (its hooks apply if one "
                 "is added through the API)" for sid in config.hooks.streams if sid not in in_file]
    return warnings
