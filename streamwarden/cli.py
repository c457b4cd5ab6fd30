"""The `streamwarden` command: run the service, run the demo, check a config or a model file.

Exit codes: 0 success, 1 the service could not run (port taken, GStreamer missing, the secret
key file missing or not matching the database) or `check-model`'s file is unusable as a
detector, 2 the configuration is invalid (every problem is printed, with key and line; a users
file entry the service refuses, by user) or the command was used wrongly.
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
from streamwarden.users.cli import add_user_commands, run_user_command
from streamwarden.users.passwords import HashParams
from streamwarden.users.userfile import UsersFileError, read_users

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

    demo = sub.add_parser("demo", help="run the service on two built-in synthetic cameras "
                                        "(one showing a person), recorded, with detection")
    demo.add_argument("--config", "-c", help="optional TOML config file to use as well")
    service_options(demo)

    check = sub.add_parser("check-config", help="validate a config file and print every error")
    check.add_argument("file")
    model = sub.add_parser(
        "check-model", help="tell whether an ONNX/TFLite file works as a detector, and run it "
                            "once on a test picture")
    model.add_argument("file", help="the model file (.onnx, or .tflite)")
    model.add_argument("--labels", help="labels file, one per line ([inference] labels_path)")
    model.add_argument("--layout", choices=("auto", "yolov5", "yolov8", "ssd"), default="auto")
    model.add_argument("--input-size", type=int, default=640,
                       help="input size for models whose input size is dynamic")
    model.add_argument("--confidence", type=float, help="minimum score (default: the model's)")
    model.add_argument("--image", help="run on this picture instead of the astronaut")
    add_client_commands(sub)
    add_user_commands(sub)
    return parser


def _overrides(args: argparse.Namespace) -> Overrides:
    """What the command line sets over the file; a reload applies it again."""
    if args.listen:
        parse_listen(args.listen)
    app = {k: v for k, v in (("log_format", args.log_format), ("log_level", args.log_level))
           if v}
    return {"api": {"listen": args.listen} if args.listen else {}, "app": app}


def _base_config(demo: bool) -> Config:
    """The settings when no config file is given: the demo's own, or the defaults."""
    if demo:
        from streamwarden.demo.scene import demo_config

        return demo_config()
    return Config()


def _check_config(path: str) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        issues = sorted(exc.issues, key=lambda i: i.line or 0)
        for issue in issues:
            print(issue.format(exc.source), file=sys.stderr)
        print(f"{path}: {len(issues)} problem(s) found", file=sys.stderr)
        return 2
    if config.users.file:  # the users file is part of what start-up checks
        try:
            users = len(read_users(config.users.file,
                                   HashParams(**config.users.min_hash.model_dump())))
        except UsersFileError as exc:
            for line in exc.lines():
                print(line, file=sys.stderr)
            return 2
        print(f"{config.users.file}: OK ({users} user(s))")
    for warning in config_warnings(config):
        print(f"{path}: warning: {warning}", file=sys.stderr)
    print(f"{path}: OK ({len(config.streams)} stream(s))")
    return 0


def _check_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from streamwarden.inference.check import UnusableModelError, check_model, format_report

    path = Path(args.file)
    for given, what in ((path, "FILE"), (args.labels and Path(args.labels), "--labels"),
                        (args.image and Path(args.image), "--image")):
        if given and not given.is_file():
            print(f"streamwarden check-model: {what} {given}: no such file", file=sys.stderr)
            return 2
    if args.confidence is not None and not 0 < args.confidence <= 1:
        print("streamwarden check-model: --confidence is a score in (0, 1]", file=sys.stderr)
        return 2
    if not 32 <= args.input_size <= 4096:
        print("streamwarden check-model: --input-size is from 32 to 4096", file=sys.stderr)
        return 2
    try:
        report = check_model(path, labels=args.labels and Path(args.labels), layout=args.layout,
                             input_size=args.input_size, confidence=args.confidence,
                             image=args.image and Path(args.image))
    except UnusableModelError as exc:
        print(f"{path}: unusable: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:  # a picture OpenCV cannot read
        print(f"streamwarden check-model: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0


def _run(args: argparse.Namespace, demo: bool) -> int:
    from streamwarden.logs import setup_logging

    try:
        overrides = _overrides(args)
        source = ConfigFile(Path(args.config), overrides) if args.config else None
        if source is not None:
            config = source.parse(source.read())
        else:
            config = apply_overrides(_base_config(demo), overrides)
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
    return _serve(config, demo, source)


def _serve(config: Config, demo: bool, source: ConfigFile | None) -> int:
    """Run the service until it stops; what stopped it as an exit code (see the module)."""
    from streamwarden.inference.detectors.base import ModelError

    try:
        from streamwarden.service import Service

        Service(config, demo=demo, config_file=source).run()
    except ModelError as exc:
        log.error("inference model: %s", exc)
        return 2
    except UsersFileError as exc:
        for line in exc.lines():
            log.error("users file: %s", line)
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
    if args.command == "check-model":
        return _check_model(args)
    if args.command in ("streams", "record", "health"):
        return run_client(args)
    if args.command == "user":
        return run_user_command(args)
    return _run(args, demo=args.command == "demo")


if __name__ == "__main__":
    sys.exit(main())
