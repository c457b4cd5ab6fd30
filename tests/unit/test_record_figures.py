"""record.py's arithmetic on zoo-camera recordings (bench/record_figures.py), on hand-made
file reports and log text: totals, percentages, PTS ≠ DTS shares, complaint lines by kind."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from record_figures import (  # bench/ is not a package: on the path above
    file_totals,
    findings_summary,
    log_findings,
    message_kind,
    pct,
    reordered_share,
)


def report(stamps: int, decoded: int, **more) -> dict:
    return {"stamps": stamps, "decoded": decoded, "played": decoded, "decode_errors": 0,
            "reordered": 0, "dts_backwards": 0, "pts_backwards": 0, "pts_irregular": 0,
            "pts_jitter_ms": 0.0, **more}


def test_pct_rounds_and_has_no_answer_without_a_whole():
    assert pct(1, 3) == 33.3
    assert pct(250, 250) == 100.0
    assert pct(0, 0) is None and pct(None, 5) is None


def test_file_totals_add_up_files_and_count_those_that_decode_short():
    files = [report(100, 100, reordered=36, decode_errors=2, pts_irregular=2, pts_jitter_ms=39.9),
             report(75, 40, reordered=27, dts_backwards=1, pts_backwards=3),
             report(25, 25, reordered=9)]
    totals = file_totals(files)
    assert totals["files"] == 3 and totals["frames"] == 200 and totals["decoded"] == 165
    assert totals["decodable_pct"] == 82.5
    assert totals["reordered"] == 72 and totals["reordered_pct"] == 36.0
    assert totals["decode_errors"] == 2 and totals["dts_backwards"] == 1
    assert totals["pts_backwards"] == 3 and totals["pts_irregular"] == 2
    assert totals["short_files"] == 1 and totals["pts_jitter_ms_max"] == 39.9


def test_file_totals_of_no_files():
    totals = file_totals([])
    assert totals["files"] == 0 and totals["frames"] == 0
    assert totals["decodable_pct"] is None and totals["pts_jitter_ms_max"] is None


def test_reordered_share_skips_packets_without_timestamps():
    pts = [0.0, 0.12, 0.04, 0.08, None, 0.24]
    dts = [0.0, 0.04, 0.08, 0.12, 0.16, 0.2]
    assert reordered_share(pts, dts) == 80.0  # 4 of the 5 complete packets
    assert reordered_share([None], [None]) is None


def test_message_kind_takes_out_addresses_and_numbers_but_not_names():
    line = ("[segment @ 0x5594e5e586c0] Non-monotonous DTS in output stream 0:0; previous: 2, "
            "current: -1024; changing to 3.")
    assert message_kind(line) == ("[segment] Non-monotonous DTS in output stream N:N; "
                                  "previous: N, current: N; changing to N.")
    assert message_kind("[mp4 @ 0xab] pts has no value") == "[mp4] pts has no value"


def test_ffmpeg_complaints_are_counted_without_its_progress_lines():
    log = ("frame=   10 fps=0.0 q=-1.0 size=N/A time=00:00:00.40 bitrate=N/A speed=0.8x\r"
           "[mp4 @ 0x1] pts has no value\n"
           "[segment @ 0x2] Non-monotonous DTS in output stream 0:0; previous: 0, current: -1024\n"
           "frame=   22 fps= 21 q=-1.0 size=N/A time=00:00:00.88 bitrate=N/A speed=0.9x\r"
           "[segment @ 0x2] Non-monotonous DTS in output stream 0:0; previous: 1, current: -512\n")
    found = log_findings(log, "ffmpeg")
    assert found == Counter({
        "[segment] Non-monotonous DTS in output stream N:N; previous: N, current: N": 2,
        "[mp4] pts has no value": 1})
    summary = findings_summary(found)
    assert summary["log_lines"] == 3
    assert next(iter(summary["log_kinds"].values())) == 2  # most frequent first


def test_streamwarden_complaints_are_warning_lines_without_time_and_logger():
    log = ("2026-11-30 20:58:04,123 INFO     streamwarden.ingest: cam1 streaming\n"
           "2026-11-30 20:58:05,001 WARNING  streamwarden.recording: cam1 segment 12 late\n"
           "2026-11-30 20:58:09,001 WARNING  streamwarden.recording: cam1 segment 13 late\n"
           "2026-11-30 20:58:09,500 ERROR    streamwarden.ingest: cam2 gone\n")
    found = log_findings(log, "streamwarden")
    assert found == Counter({"WARNING cam1 segment N late": 2, "ERROR cam2 gone": 1})
