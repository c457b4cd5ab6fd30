"""Baseline: what streamwarden records today from each zoo camera trait (not a test).

    .venv/bin/python bench/zoo_baseline.py                    # mp4, mkv, ts; about 3 minutes
    .venv/bin/python bench/zoo_baseline.py --formats mp4 --traits h264-b2,pcma --keep-logs

Starts one zoo camera per trait (tests/zoo: media encoded once by ffmpeg, served by
GStreamer's RTSP server library, ffmpeg over HTTP, or ffmpeg through nginx-rtmp), then for
each container format one `python -m streamwarden run` recording every camera in 4 s
segments for `--seconds`. Each recorded file is read back with ffprobe/ffmpeg
(tests/zoo/recorded.py): frames kept (stamps) against frames sent, frames decoded and played,
B-frame reordering kept, DTS order, audio; plus the stream's health and its log lines.
Prints one table per format and writes bench/results/zoo-baseline-*.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Processes, free_port, toml_text, wait_until, workspace, write_json
from tests.zoo.camera import ZooCamera
from tests.zoo.recorded import FileReport, analyse
from tests.zoo.spec import CameraSpec, MediaSpec, RtspBehaviour, Stall

M = MediaSpec
R = RtspBehaviour
TRAITS: dict[str, tuple[CameraSpec, dict]] = {
    "h264": (CameraSpec(media=M(audio="aac")), {}),
    "h264-b2": (CameraSpec(media=M(bframes=2, audio="aac")), {}),
    "h264-pyramid": (CameraSpec(media=M(bframes=3, pyramid=True)), {}),
    "h265": (CameraSpec(media=M(codec="h265")), {}),
    "h265-pyramid": (CameraSpec(media=M(codec="h265", bframes=4, pyramid=True)), {}),
    "gop10s": (CameraSpec(media=M(gop_seconds=10, seconds=10)), {}),
    "vfr": (CameraSpec(media=M(vfr=True)), {}),
    "res-change": (CameraSpec(media=M(second_size=(640, 360))), {}),
    "pcma": (CameraSpec(media=M(audio="pcma")), {}),
    "pcmu": (CameraSpec(media=M(audio="pcmu")), {}),
    "opus": (CameraSpec(media=M(audio="opus")), {}),
    "sdp-only": (CameraSpec(rtsp=R(parameter_sets="sdp")), {}),
    "h265-sdp-only": (CameraSpec(media=M(codec="h265"), rtsp=R(parameter_sets="sdp")), {}),
    "inband-only": (CameraSpec(rtsp=R(parameter_sets="inband")), {}),
    "udp": (CameraSpec(rtsp=R(transport="udp")), {"transport": "udp"}),
    "udp-loss-2pct": (CameraSpec(rtsp=R(transport="udp", loss=0.02)), {"transport": "udp"}),
    "stall3s": (CameraSpec(rtsp=R(stalls=(Stall(at=6, seconds=3),))), {}),
    "stall7s": (CameraSpec(rtsp=R(stalls=(Stall(at=6, seconds=7),))), {}),
    "jump-fwd-300s": (CameraSpec(rtsp=R(jump_at=6, jump_seconds=300)), {}),
    "jump-back-300s": (CameraSpec(rtsp=R(jump_at=6, jump_seconds=-300)), {}),
    "udp-jump-fwd-300s": (CameraSpec(rtsp=R(transport="udp", jump_at=6, jump_seconds=300)),
                          {"transport": "udp"}),
    "rtp-wrap": (CameraSpec(rtsp=R(rtp_wrap_after=6)), {}),
    "drift-fast-1pct": (CameraSpec(rtsp=R(drift=0.01)), {}),
    "single-client": (CameraSpec(rtsp=R(single_client=True)), {}),
    "http-ts-b2": (CameraSpec(media=M(bframes=2, audio="aac"), kind="http-ts"), {}),
    "rtmp": (CameraSpec(media=M(audio="aac"), kind="rtmp"), {}),
}


def stream_id(trait: str) -> str:
    """Trait names are already valid stream ids (lower case, digits, dashes)."""
    return trait


def service_config(workdir: Path, fmt: str, port: int, cameras: dict[str, ZooCamera]) -> str:
    streams = [{"id": stream_id(t), "uri": c.url, "enable_recording": True, **TRAITS[t][1]}
               for t, c in cameras.items()]
    return toml_text({
        "app": {"database": str(workdir / f"{fmt}.db")},
        "api": {"listen": f"127.0.0.1:{port}"},
        "restream": {"enabled": False},
        "recording": {"base_path": str(workdir / f"rec-{fmt}"), "segment_duration": "4s",
                      "format": fmt},
        "streams": streams,
    })


def record(processes: Processes, workdir: Path, fmt: str, cameras: dict[str, ZooCamera],
           seconds: float) -> tuple[dict, str]:
    """Run the service for one format; returns (stream views from the API, its log)."""
    port = free_port()
    config = workdir / f"{fmt}.toml"
    config.write_text(service_config(workdir, fmt, port, cameras))
    service = processes.start(f"service-{fmt}", [sys.executable, "-m", "streamwarden", "run",
                                                 "-c", str(config), "--log-level", "info"])
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def api_up() -> bool:
        try:
            return client.get("/streams").status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(api_up, 60, "the service's API")
    time.sleep(seconds)
    views = {v["id"]: v for v in client.get("/streams").json()}
    processes.stop([service])
    return views, service.log.read_text(errors="replace")


def log_lines(log: str, sid: str) -> list[str]:
    """WARNING/ERROR lines about one stream, the timestamp and logger cut off."""
    out = []
    for line in log.splitlines():
        if re.search(r"\b(WARNING|ERROR)\b", line) and re.search(rf"\b{re.escape(sid)}\b", line):
            out.append(re.sub(r"^\S+ \S+ +(WARNING|ERROR) +\S+: ", r"\1 ", line)[:160])
    return out


def summarise(trait: str, files: list[FileReport], view: dict, lines: list[str],
              camera: ZooCamera) -> dict:
    seqs = [(f.first, f.last) for f in files if f.first is not None]
    kept = sum(f.stamps for f in files)
    span = (max(b for _, b in seqs) - min(a for a, _ in seqs) + 1) if seqs else 0
    health = view.get("health", {}) if view else {}
    return {
        "trait": trait, "files": len(files), "sent_in_span": span, "kept": kept,
        "lost": span - kept if span else None,
        "decoded": sum(f.decoded for f in files), "played": sum(f.played for f in files),
        "decode_errors": sum(f.decode_errors for f in files),
        "reordered_kept": sum(f.reordered for f in files),
        "b_frames_sent": camera.spec.media.bframes > 0,
        "dts_backwards": sum(f.dts_backwards for f in files),
        "pts_jitter_ms": max((f.pts_jitter_ms for f in files), default=0.0),
        "disordered": sum(f.disordered for f in files),
        "sizes": sorted({s for f in files for s in f.sizes}),
        "audio_sent": camera.spec.media.audio,
        "audio_kept": sorted({f.audio for f in files}),
        "audio_ingested": (view or {}).get("statistics", {}).get("audio_codec"),
        "state": health.get("state"), "retries": health.get("retry_count"),
        "last_retry_reason": health.get("last_retry_reason"),
        "log": sorted(set(lines))[:6], "log_count": len(lines),
        "file_reports": [dataclasses.asdict(f) for f in files],
    }


COLUMNS = ("trait", "files", "sent", "kept", "decoded", "played (% of sent)", "ffmpeg errors",
           "pts≠dts", "dts↓", "jitter ms", "audio sent→ingested→kept", "sizes",
           "retries (reason)", "warnings")


def row_cells(r: dict) -> list[str]:
    pct = f" ({100 * r['played'] / r['sent_in_span']:.0f} %)" if r["sent_in_span"] else ""
    return [
        r["trait"], str(r["files"]), str(r["sent_in_span"]), str(r["kept"]), str(r["decoded"]),
        f"{r['played']}{pct}", str(r["decode_errors"]),
        f"{r['reordered_kept']}" + ("" if r["b_frames_sent"] else " (no B)"),
        str(r["dts_backwards"]), str(r["pts_jitter_ms"]),
        f"{r['audio_sent']}→{r['audio_ingested'] or '-'}→{','.join(r['audio_kept'])}",
        " ".join(r["sizes"]), f"{r['retries']} ({r['last_retry_reason'] or '-'})",
        f"{r['log_count']}: {r['log'][0][:70]}" if r["log"] else "0",
    ]


def table(fmt: str, rows: list[dict]) -> str:
    lines = [f"\n### {fmt}\n", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace, workdir: Path) -> dict:
    processes = Processes(workdir)
    cameras: dict[str, ZooCamera] = {}
    results: dict[str, list[dict]] = {}
    try:
        for trait in args.traits:
            cameras[trait] = ZooCamera(TRAITS[trait][0], workdir / f"cam-{stream_id(trait)}")
            cameras[trait].start()
        for fmt in args.formats:
            views, log = record(processes, workdir, fmt, cameras, args.seconds)
            rows = []
            for trait, camera in cameras.items():
                sid = stream_id(trait)
                paths = sorted((workdir / f"rec-{fmt}" / sid).glob("*/*.*"))
                rows.append(summarise(trait, [analyse(p) for p in paths], views.get(sid),
                                      log_lines(log, sid), camera))
            results[fmt] = rows
            print(table(fmt, rows), flush=True)
    finally:
        processes.stop_all()
        for camera in cameras.values():
            camera.kill()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", default="mp4,mkv,ts")
    parser.add_argument("--traits", default=",".join(TRAITS))
    parser.add_argument("--seconds", type=float, default=17.0,
                        help="recording time per format (3 segments of 4 s and the open one)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    args.formats = args.formats.split(",")
    args.traits = args.traits.split(",")
    unknown = [t for t in args.traits if t not in TRAITS]
    if unknown:
        parser.error(f"unknown traits {unknown}; known: {', '.join(TRAITS)}")
    with workspace(args.keep_logs) as workdir:
        results = run(args, workdir)
    path = write_json("zoo-baseline", {"parameters": vars(args), "results": results})
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
