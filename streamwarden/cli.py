"""The `streamwarden` command: run the service, run the demo, check a config file.

Exit codes: 0 success, 1 the service could not run (port taken, GStreamer missing, the secret
key file missing or not matching the database), 2 the configuration is invalid (every problem
is printed, with key and line).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from streamwarden.client import add_client_commands, run_client
from streamwarden.config.loader import ConfigError, config_warnings, load_config
from streamwarden.config.model import Config, parse_listen
from streamwarden.config.source import ConfigFile, Overrides, apply_overrides
from streamwarden.private_files import tighten_umask

log = logging.getLogger("streamwarden")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamwarden",
        description="Camera ingest, recording, inference and restream in one service.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def service_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--listen", help='API address "HOST:PORT" (overrides [api] listen)')
        p.add_argument("--log-format", choices=("text", "json"), help="log line format")
        p.add_argument("--log-level", choices=("debug", "info", "warning", "error"))

    run = sub.add_parser("run", help="run the service with the streams of a config file")
    run.add_argument("--config", "-c", help="TOML config file (default: no streams)")
    service_options(run)

    demo = sub.add_parser("demo", help="run the service on a built-in synthetic camera")
    demo.add_argument("--config", "-c", help="optional TOML config file to use as well")
    service_options(demo)

    check = sub.add_parser("check-config", help="validate a config file and print every error")
    check.add_argument("file")
    add_client_commands(sub)
    return parser


def _overrides(args: argparse.Namespace) -> Overrides:
    """What the command line sets over the file; a reload applies it again."""
    if args.listen:
        parse_listen(args.listen)
    app = {k: v for k, v in (("log_format", args.log_format), ("log_level", args.log_level))
           if v}
    return {"api": {"listen": args.listen} if args.listen else {}, "app": app}


def _check_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        issues = sorted(exc.issues, key=lambda i: i.line or 0)
        for issue in issues:
            print(issue.format(exc.source), file=sys.stderr)
        print(f"{path}: {len(issues)} problem(s) found", file=sys.stderr)
        return 2
    for warning in config_warnings(config):
        print(f"{path}: warning: {warning}", file=sys.stderr)
    print(f"{path}: OK ({len(config.streams)} stream(s))")
    return 0


def _run(args: argparse.Namespace, demo: bool) -> int:
    from streamwarden.logs import setup_logging

    try:
        overrides = _overrides(args)
        source = ConfigFile(Path(args.config), overrides) if args.config else None
        config = source.parse(source.read()) if source else apply_overrides(Config(), overrides)
    except ConfigError as exc:
        for issue in sorted(exc.issues, key=lambda i: i.line or 0):
            print(issue.format(exc.source), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"streamwarden: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.app.log_format, config.app.log_level)
    tighten_umask()  # nothing this process creates is for other users unless given a mode
    for warning in config_warnings(config):
        log.warning(warning)
    from streamwarden.inference.detectors.base import ModelError

    try:
        from streamwarden.service import Service

        Service(config, demo=demo, config_file=source).run()
    except ModelError as exc:
        log.error("inference model: %s", exc)
        return 2
    except PermissionError as exc:
        log.error("%s", exc)
        return 2
    except (OSError, RuntimeError, ImportError) as exc:
        log.error("%s", exc)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args.file)
    if args.command in ("streams", "record", "health"):
        return run_client(args)
    return _run(args, demo=args.command == "demo")


if __name__ == "__main__":
    sys.exit(main())
