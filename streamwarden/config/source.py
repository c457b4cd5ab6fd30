"""Where the running config comes from: a file, plus what the command line overrode.

A reload must read the file the way start-up did: `--listen 0.0.0.0:9000` on the command line
is not in the file, and without it every reload would report `api.listen` as changed. So the
CLI's overrides travel with the path, and `ConfigFile.parse` applies them to every new text.
The API token from the environment (`STREAMWARDEN_API_TOKEN`) is applied the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamwarden.config.loader import ConfigError, ConfigIssue, parse_config
from streamwarden.config.model import Config

Overrides = Mapping[str, Mapping[str, Any]]  # section → key → value


def apply_overrides(config: Config, overrides: Overrides) -> Config:
    """`config` with some keys of some sections replaced (values already checked)."""
    sections = {name: getattr(config, name).model_copy(update=dict(values))
                for name, values in overrides.items() if values}
    return config.model_copy(update=sections)


def with_environment_token(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """The API token from `STREAMWARDEN_API_TOKEN` when the file sets none."""
    env = os.environ if environ is None else environ
    token = config.api.token or env.get("STREAMWARDEN_API_TOKEN") or None
    if token == config.api.token:
        return config
    return config.model_copy(update={"api": config.api.model_copy(update={"token": token})})


@dataclass(frozen=True)
class ConfigFile:
    """A config file and the command line's overrides of it."""

    path: Path
    overrides: Overrides = field(default_factory=dict)

    def read(self) -> str:
        """The file's text; an unreadable file is a ConfigError like any other problem."""
        try:
            return self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(self.path), [
                ConfigIssue("", None, f"cannot read the file: {exc}")]) from None

    def parse(self, text: str) -> Config:
        """Validate `text` (ConfigError lists every problem), then apply the overrides."""
        config = parse_config(text, str(self.path))
        return with_environment_token(apply_overrides(config, self.overrides))
