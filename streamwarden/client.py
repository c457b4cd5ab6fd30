"""`streamwarden streams|record|health`: the API from scripts, with exit codes that mean something.

Exit codes: 0 done (for `health`: every stream healthy), 1 the service refused or a stream is
unhealthy (the API's error is printed), 2 bad usage, 3 the service cannot be reached.
`--url` (or STREAMWARDEN_URL) and `--token` (or STREAMWARDEN_API_TOKEN) say where and how.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3


def add_client_commands(sub: argparse._SubParsersAction) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--url", default=os.environ.get("STREAMWARDEN_URL",
                                                       "http://127.0.0.1:8080"))
        p.add_argument("--token", default=os.environ.get("STREAMWARDEN_API_TOKEN"))
        p.add_argument("--json", action="store_true", help="print the API's JSON")

    streams = sub.add_parser("streams", help="list, add or remove streams of a running service")
    verbs = streams.add_subparsers(dest="verb", required=True)
    common(verbs.add_parser("list"))
    add = verbs.add_parser("add")
    add.add_argument("id")
    add.add_argument("uri")
    add.add_argument("--record", action="store_true", help="record continuously")
    add.add_argument("--transport", choices=("tcp", "udp"))
    common(add)
    rm = verbs.add_parser("rm")
    rm.add_argument("id")
    common(rm)

    record = sub.add_parser("record", help="start or stop recording a stream")
    actions = record.add_subparsers(dest="verb", required=True)
    start = actions.add_parser("start")
    start.add_argument("id")
    start.add_argument("--pre-roll")
    start.add_argument("--duration")
    start.add_argument("--post-roll")
    common(start)
    stop = actions.add_parser("stop")
    stop.add_argument("id")
    common(stop)

    health = sub.add_parser("health", help="health of every stream (exit 1 if one is unhealthy)")
    health.add_argument("--ready", action="store_true",
                        help="only ask whether the service is ready (GET /health/ready): "
                             "exit 0 if so, 1 if not (the container's HEALTHCHECK)")
    common(health)


def _request(args: argparse.Namespace, method: str, path: str,
             body: dict[str, Any] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    try:
        response = httpx.request(method, args.url.rstrip("/") + path, json=body,
                                 headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"streamwarden: cannot reach {args.url}: {exc}", file=sys.stderr)
        raise SystemExit(UNREACHABLE) from None
    payload = response.json() if response.content else None
    if response.status_code >= 400:
        detail = payload.get("detail") if isinstance(payload, dict) else response.text
        print(f"streamwarden: {response.status_code}: {detail}", file=sys.stderr)
        raise SystemExit(REFUSED)
    return response.status_code, payload


def _print_streams(items: list[dict[str, Any]]) -> None:
    print(f"{'ID':<20} {'STATE':<10} {'FPS':>6} {'KBPS':>8} {'RETRIES':>7} {'REC':>4}  URI")
    for item in items:
        health = item["health"]
        print(f"{item['id']:<20} {health['state']:<10} {health['fps']:>6.1f} "
              f"{health['bitrate_kbps']:>8.0f} {health['retry_count']:>7} "
              f"{'yes' if item['recording'] else 'no':>4}  {item['uri']}")


def run_client(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def _health(args: argparse.Namespace) -> int:
    if args.ready:
        _, verdict = _request(args, "GET", "/health/ready")  # not ready: a 503, exit 1
        print(json.dumps(verdict) if args.json else f"ready: {verdict['detail']}")
        return OK
    _, entries = _request(args, "GET", "/health")
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        for e in entries:
            mark = "ok" if e["is_healthy"] else "UNHEALTHY"
            print(f"{e['id']:<20} {mark:<10} {e['state']:<10} retries={e['retry_count']} "
                  f"last_frame_age={e['last_frame_age_s']}")
    return OK if all(e["is_healthy"] for e in entries) else REFUSED


def _run(args: argparse.Namespace) -> int:
    command, verb = args.command, getattr(args, "verb", None)
    if command == "health":
        return _health(args)
    if command == "streams" and verb == "list":
        _, items = _request(args, "GET", "/streams")
        print(json.dumps(items, indent=2)) if args.json else _print_streams(items)
        return OK
    if command == "streams" and verb == "add":
        body = {"id": args.id, "uri": args.uri, "enable_recording": args.record}
        if args.transport:
            body["transport"] = args.transport
        _, created = _request(args, "POST", "/streams", body)
        print(json.dumps(created) if args.json else f"added {created['id']}")
        return OK
    if command == "streams" and verb == "rm":
        _request(args, "DELETE", f"/streams/{args.id}")
        print(f"removed {args.id}")
        return OK
    if command == "record":
        if verb == "start":
            body = {k: v for k, v in (("pre_roll", args.pre_roll), ("duration", args.duration),
                                      ("post_roll", args.post_roll)) if v}
            _, state = _request(args, "POST", f"/streams/{args.id}/record", body or None)
        else:
            _, state = _request(args, "DELETE", f"/streams/{args.id}/record")
        print(json.dumps(state) if args.json else
              f"{args.id}: {'recording' if state['recording'] else 'not recording'}")
        return OK
    return USAGE
