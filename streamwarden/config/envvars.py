"""`${NAME}` references to environment variables in config string values.

Camera passwords belong in the environment (a systemd `EnvironmentFile`, a container secret),
not in a config file that is copied around and checked in. Every string value of the parsed
TOML may reference variables; `$$` is a literal `$`, and a `$` followed by anything else is
kept as written, so existing values with a lone `$` keep their meaning. A reference to an
unset variable is an error with the key path, so the loader can report it with its line.

Each expansion is remembered per key path, so an error message about that key can show
`${NAME}` again instead of the secret it stood for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Loc = tuple[str | int, ...]

_TOKEN = re.compile(r"\$(?:(\$)|\{([^}]*)\}|(\{))")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class EnvProblem:
    loc: Loc
    message: str


@dataclass
class Expansion:
    """The data with references replaced, what went wrong, and what each key's value hid."""

    data: Any
    problems: list[EnvProblem] = field(default_factory=list)
    secrets: dict[Loc, list[tuple[str, str]]] = field(default_factory=dict)  # loc: (name, value)

    def conceal(self, loc: Loc, text: str) -> str:
        """`text` with the values expanded into `loc` shown as their `${NAME}` again."""
        for name, value in sorted(self.secrets.get(loc, ()), key=lambda p: -len(p[1])):
            if value:
                text = text.replace(value, f"${{{name}}}")
        return text


def _expand_string(text: str, loc: Loc, environ: Mapping[str, str], out: Expansion) -> str:
    def replace(match: re.Match[str]) -> str:
        dollar, name, unclosed = match.groups()
        if dollar:
            return "$"
        if unclosed:
            out.problems.append(EnvProblem(loc, "'${' without a closing '}' (write $$ for a "
                                                "literal $)"))
            return match.group(0)
        if not _NAME.match(name):
            out.problems.append(EnvProblem(loc, f"'${{{name}}}' is not a valid environment "
                                                "variable name (letters, digits and '_')"))
            return match.group(0)
        if name not in environ:
            out.problems.append(EnvProblem(loc, f"environment variable {name} is not set "
                                                f"(referenced as ${{{name}}})"))
            return ""
        out.secrets.setdefault(loc, []).append((name, environ[name]))
        return environ[name]

    return _TOKEN.sub(replace, text)


def _walk(value: Any, loc: Loc, environ: Mapping[str, str], out: Expansion) -> Any:
    if isinstance(value, str):
        return _expand_string(value, loc, environ, out) if "$" in value else value
    if isinstance(value, dict):
        return {key: _walk(item, (*loc, key), environ, out) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, (*loc, index), environ, out) for index, item in enumerate(value)]
    return value


def expand_env(data: dict[str, Any], environ: Mapping[str, str]) -> Expansion:
    """Expand every `${NAME}` in the string values of parsed TOML `data` (keys are left)."""
    out = Expansion(data=None)
    out.data = _walk(data, (), environ, out)
    return out
