"""The soak benchmark's printed report: resource trends, faults, recordings, errors, verdict.

Split from soak.py, which runs the soak; this only formats the result dictionary it returns.
"""

from __future__ import annotations

import argparse
from typing import Any

from harness import FPS, code_line
from soak_figures import METRICS

FD_TOLERANCE = 2  # fds or threads a sample may catch mid-way (a viewer, a reconnect)
LONG_RUN_S = 1200.0  # from 20 minutes on, the RSS slope is judged against --rss-limit


def resource_table(result: dict[str, Any]) -> str:
    """Per metric: at start (before any fault), then from the warm-up on (at rest if enough)."""
    start = result["samples"][0]
    lines = [f"{'service process':<16} {'start':>8} {'first':>8} {'last':>8} {'change':>8} "
             f"{'min':>8} {'max':>8} {'slope/h':>9}  read from"]
    for key, label, scale in METRICS:
        t = result["trends"][key]
        if not t.get("points"):
            continue
        begin = start[key] * scale if start[key] is not None else None
        cells = [round(begin, 2) if begin is not None else "-", t["first"], t["last"],
                 t["change"], t["min"], t["max"]]
        if key == "cpu_pct":
            cells = ["-", "-", "-", "-", t["min"], t["max"]]
            label = f"CPU % (mean {t['mean']:.1f})"
        slope = t["slope_per_hour"] if t["slope_per_hour"] is not None else "-"
        lines.append(f"{label:<16} " + " ".join(f"{c:>8}" for c in cells)
                     + f" {slope:>9}  {t['points']} samples ({t['basis']})")
    for name, key in (("fds by kind", "fd_kind_changes"), ("sockets", "socket_changes")):
        lines.append(f"{name}, last - first: " + (", ".join(
            f"{kind} {n:+d}" for kind, n in result[key].items()) or "no change"))
    return "\n".join(lines)


def fault_table(result: dict[str, Any]) -> str:
    lines = [f"{'fault':<8} {'injected':>8} {'failed':>6} {'recovery s mean/max':>20}"]
    for kind, s in result["fault_summary"].items():
        recovery = (f"{s['recovery_s_mean']}/{s['recovery_s_max']}"
                    if s["recovery_s_mean"] is not None else "-")
        lines.append(f"{kind:<8} {s['injected']:>8} {s['failed']:>6} {recovery:>20}")
    for record in result["faults"]:
        if not record["ok"]:
            lines.append(f"  FAILED {record['kind']} at +{record['start'] - result['origin']:.0f}s:"
                         f" {str(record['detail'])[:200]}")
    return "\n".join(lines)


def recording_table(result: dict[str, Any]) -> str:
    head = (f"{'stream':<8} {'role':<14} {'files':>5} {'frames':>7} {'lost outside':>12} "
            f"{'lost in faults':>14} {'dup':>4} {'bad files':>9} {'bad outside':>11}")
    lines = [head]
    streams = result["recordings"]["streams"]
    for sid, s in [*streams.items(), ("total", result["recordings"]["total"])]:
        bad, outside = (len(s[k]) if isinstance(s[k], dict | list) else s[k]
                        for k in ("bad_files", "bad_outside"))
        lines.append(f"{sid:<8} {result['roles'].get(sid, ''):<14} {s['files']:>5} "
                     f"{s['frames']:>7} {s['lost_outside']:>12} {s['lost_in_faults']:>14} "
                     f"{s['repeats']:>4} {bad:>9} {outside:>11}")
    index: dict[str, int] = {}
    for counts in result["final_state"].get("recordings_index", {}).values():
        for key, n in counts.items():
            index[key] = index.get(key, 0) + n
    if index:
        lines.append("GET /recordings lists: " + ", ".join(
            f"{n} {key}" for key, n in sorted(index.items())))
    for sid, s in streams.items():
        for gap in s["gaps_outside"][:5]:
            lines.append(f"  {sid}: {gap['frames']} frame(s) lost outside faults, sent "
                         f"+{gap['at_s']}s..+{gap['until_s']}s ({gap['kind']}); "
                         f"{len(gap.get('log', []))} log lines about {sid} around it in the JSON")
    return "\n".join(lines)


def error_list(result: dict[str, Any]) -> str:
    errors = result["errors"]
    lines = [f"service ERROR/CRITICAL lines: {errors['lines']} in {len(errors['groups'])} "
             f"kind(s), {errors['outside_faults']} logged outside any fault window"]
    for group in errors["groups"][:30]:
        during = ", ".join(f"{k} {n}" for k, n in sorted(group["during"].items()))
        lines.append(f"  {group['count']:>5}x {group['level']} {group['source']}: "
                     f"{group['example'][:150]}  [during: {during}]")
    return "\n".join(lines)


def verdict(result: dict[str, Any], args: argparse.Namespace) -> str:
    """One line: does anything climb, was a frame lost or an error logged outside the faults."""
    t = result["trends"]
    parts, flat = [], True
    for key in ("fds", "threads", "children"):
        change = t[key].get("change")
        # At rest the counts are exact: any rise is one. Mid-fault samples get some slack.
        slack = 0 if key == "children" or t[key].get("basis") == "rest" else FD_TOLERANCE
        flat &= change is not None and change <= slack
        parts.append(f"{key} {change:+g}" if change is not None else f"{key} ?")
    rss = t["rss_kib"].get("slope_per_hour")
    parts.append(f"RSS {rss:+.1f} MiB/h" if rss is not None else "RSS ?")
    short = ""
    if args.duration < LONG_RUN_S:
        short = " (short run: the RSS slope extrapolates minutes and is not judged)"
    elif rss is None or rss > args.rss_limit:
        flat = False
    rec = result["recordings"]["total"]
    failed = sum(s["failed"] for s in result["fault_summary"].values())
    crash = f"SERVICE DIED: {result['crash']}; " if result.get("crash") else ""
    return (f"verdict: {crash}{'flat' if flat else 'CLIMBING'} after warm-up "
            f"({', '.join(parts)})"
            f"{short}; frames lost outside faults: {rec['lost_outside']}, bad files outside "
            f"faults: {rec['bad_outside']}; "
            f"errors outside faults: {result['errors']['outside_faults']}; "
            f"faults that did not recover: {failed}; "
            f"service exit code: {result['service_exit_code']}")


def report(result: dict[str, Any], args: argparse.Namespace, env: dict[str, Any]) -> None:
    samples = result["samples"]
    print(f"\nsoak: {args.cameras} cameras {args.size[0]}x{args.size[1]}@{FPS} ({args.picture}),"
          f" {args.duration:g}s, recording {args.segment_duration:g}s segments, detection on "
          f"{args.inference_cameras} at {args.inference_fps:g} fps; faults: "
          f"{','.join(result['fault_summary']) or 'none'} in {result['rounds']} round(s) of "
          f"{args.round:g}s; {len(samples)} samples (every {args.sample_interval:g}s and at "
          f"rest after each round), trends after {args.warmup:g}s; margin {args.margin:g}s"
          f"{'; ' + result['disk']['note'] if result['disk']['note'] else ''}")
    print(code_line(env) + "\n")
    for block in (resource_table, fault_table, recording_table, error_list):
        print(block(result) + "\n")
    print(verdict(result, args))


