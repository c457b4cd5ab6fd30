"""The camera zoo checks itself: each zoo camera really has its trait, as FFmpeg sees it.

Cameras are real processes (GStreamer's RTSP server, ffmpeg, nginx-rtmp) on 127.0.0.1; the
checks use ffprobe/ffmpeg, independent of both GStreamer and streamwarden. Media comes from
the zoo's cache (encoded once by ffmpeg). Plain logic (faults, NAL handling, specs) is tested
with hand-made data first.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import time
from pathlib import Path

import pytest

from streamwarden.demo.stamp import read_stamps
from tests.zoo.clip import load_clip
from tests.zoo.faults import WRAP, Clock, StallPlan, wrap_offset
from tests.zoo.ffmpeg_camera import rtmp_available
from tests.zoo.media import ensure_media
from tests.zoo.nal import (
    nal_type,
    parameter_sets,
    split_annexb,
    split_length_prefixed,
    to_annexb,
    to_length_prefixed,
)
from tests.zoo.probe import capture, capture_all, file_packets, probe
from tests.zoo.spec import CameraSpec, MediaSpec, RtspBehaviour, Stall

# ---- plain logic --------------------------------------------------------------------------


def test_stall_plan_windows():
    plan = StallPlan.of(RtspBehaviour(stalls=(Stall(at=2, seconds=3),)))
    assert [plan.stalled(t) for t in (1.9, 2.0, 4.9, 5.0)] == [False, True, True, False]
    plan.add(10, 1)
    assert plan.stalled(10.5) and not plan.stalled(11.0)


def test_clock_drift_jump_and_headroom():
    clock = Clock.of(RtspBehaviour(drift=0.01, jump_at=5, jump_seconds=-3))
    assert clock.headroom == 4.0  # a 3 s backward jump must stay above zero
    assert clock.stamp(0, 0) == 4_000_000_000
    assert clock.stamp(1_000_000_000, 1_000_000_000) == 5_010_000_000
    # the jump is decided by the unit's due time, so a reordered B-frame jumps with its GOP
    assert clock.stamp(4_900_000_000, 5_000_000_000) == round(4.9e9 * 1.01 + 1e9)
    assert Clock().stamp(7, 7) == 1_000_000_007


def test_wrap_offset_wraps_after_the_given_time():
    offset = wrap_offset(5, 90000)
    assert offset + 5 * 90000 == WRAP and (offset + 4 * 90000) < WRAP


def test_nal_forms_round_trip_and_avcc_parse():
    sps, pps, idr = b"\x67\x64\x00\x0d", b"\x68\xef", b"\x65\x88\x84\x00\x00\x03\x01"
    assert split_annexb(to_annexb([sps, pps, idr])) == [sps, pps, idr]
    assert split_length_prefixed(to_length_prefixed([sps, idr])) == [sps, idr]
    avcc = (bytes([1, 0x64, 0, 0x0d, 0xFF, 0xE1]) + len(sps).to_bytes(2, "big") + sps
            + b"\x01" + len(pps).to_bytes(2, "big") + pps)
    assert parameter_sets("h264", avcc) == ([sps, pps], 4)
    assert [nal_type("h264", n) for n in (sps, pps, idr)] == [7, 8, 5]
    assert nal_type("h265", b"\x40\x01") == 32  # VPS


def test_spec_json_round_trip_and_bad_values():
    spec = CameraSpec(media=MediaSpec(codec="h265", bframes=4, pyramid=True, audio="pcmu",
                                      second_size=(640, 360)),
                      rtsp=RtspBehaviour(stalls=(Stall(1, 2),), drift=-0.01, loss=0.05))
    assert CameraSpec.from_json(spec.to_json()) == spec
    for bad in ({"codec": "vp8"}, {"audio": "mp3"}, {"bframes": 1, "pyramid": True}):
        with pytest.raises(ValueError):
            MediaSpec(**bad)
    with pytest.raises(ValueError):
        RtspBehaviour(loss=1.5)
    assert MediaSpec().key() != MediaSpec(bframes=2).key()


# ---- media: what ffmpeg encoded, read back by ffprobe ---------------------------------------


def _ffprobe_json(path: Path, entries: str, select: str = "v") -> list[dict]:
    import json
    result = subprocess.run(["ffprobe", "-v", "error", "-select_streams", select,
                             "-show_entries", entries, "-of", "json", str(path)],
                            capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(result.stdout)
    return data.get("streams") or data.get("packets") or []


@pytest.mark.parametrize(("spec", "reorder"), [
    (MediaSpec(), 0),
    (MediaSpec(bframes=2), 1),
    (MediaSpec(bframes=3, pyramid=True), 2),
    (MediaSpec(codec="h265", bframes=2), 1),
    (MediaSpec(codec="h265", bframes=4, pyramid=True), 2),
], ids=["h264", "h264-b2", "h264-pyramid", "h265-b2", "h265-pyramid"])
def test_media_b_frames(spec, reorder):
    path = ensure_media(spec).video[0]
    [stream] = _ffprobe_json(path, "stream=codec_name,has_b_frames")
    assert stream["codec_name"] == {"h264": "h264", "h265": "hevc"}[spec.codec]
    assert stream["has_b_frames"] == reorder
    packets = file_packets(path)
    reordered = sum(p.pts != p.dts for p in packets)
    assert (reordered > len(packets) // 3) if reorder else reordered == 0


def test_media_gop_vfr_and_resolution_change():
    long_gop = file_packets(ensure_media(MediaSpec(gop_seconds=10, seconds=10)).video[0])
    assert len(long_gop) == 250 and sum(p.keyframe for p in long_gop) == 1
    short_gop = file_packets(ensure_media(MediaSpec()).video[0])
    assert [i for i, p in enumerate(short_gop) if p.keyframe] == [0, 25, 50, 75]
    vfr = sorted(p.pts for p in file_packets(ensure_media(MediaSpec(vfr=True)).video[0]))
    steps = {round(b - a, 3) for a, b in itertools.pairwise(vfr)}
    assert steps == {0.04, 0.08}, "every fifth frame dropped: 40 and 80 ms between frames"
    parts = ensure_media(MediaSpec(seconds=2, second_size=(640, 360))).video
    sizes = [_ffprobe_json(p, "stream=width,height")[0] for p in parts]
    assert [(s["width"], s["height"]) for s in sizes] == [(320, 240), (640, 360)]


@pytest.mark.parametrize(("audio", "codec", "rate"), [
    ("aac", "aac", 16000), ("pcma", "pcm_alaw", 8000), ("pcmu", "pcm_mulaw", 8000),
    ("opus", "opus", 48000)])
def test_media_audio(audio, codec, rate):
    path = ensure_media(MediaSpec(audio=audio)).audio
    [stream] = _ffprobe_json(path, "stream=codec_name,sample_rate", select="a")
    assert (stream["codec_name"], int(stream["sample_rate"])) == (codec, rate)
    clip = load_clip(MediaSpec(audio=audio))
    covered = (clip.audio[-1].pts + clip.audio[-1].duration) / 1e9
    assert 3.9 < covered < 4.2, "audio covers the video's loop"


# ---- the RTSP camera (GStreamer's RTSP server), read by ffprobe/ffmpeg ----------------------

AUDIO_CODEC = {"aac": "aac", "pcma": "pcm_alaw", "pcmu": "pcm_mulaw", "opus": "opus"}


@pytest.mark.parametrize("media", [
    MediaSpec(bframes=3, pyramid=True, audio="aac"),
    MediaSpec(codec="h265", bframes=4, pyramid=True, audio="pcma"),
    MediaSpec(codec="h265", audio="pcmu"),
    MediaSpec(bframes=2, audio="opus"),
], ids=["h264-pyramid-aac", "h265-pyramid-pcma", "h265-pcmu", "h264-b2-opus"])
def test_rtsp_codecs_b_frames_and_audio(zoo_camera, media):
    camera = zoo_camera(CameraSpec(media=media))
    seen = probe(camera.url, seconds=2)
    video = seen.video()
    assert video["codec_name"] == {"h264": "h264", "h265": "hevc"}[media.codec]
    assert (video["width"], video["height"]) == (320, 240)
    assert seen.codecs() == {video["codec_name"], AUDIO_CODEC[media.audio]}
    packets = seen.video_packets()
    assert len(packets) >= 30
    reordered = sum(p.pts != p.dts for p in packets if p.dts is not None)
    if media.bframes:
        assert video["has_b_frames"] >= 1 and reordered > len(packets) // 4, \
            "PTS and DTS must both reach the client"
    else:
        assert reordered == 0


def test_rtsp_stamps_every_frame_sent(zoo_camera, tmp_path):
    camera = zoo_camera(CameraSpec(media=MediaSpec(bframes=2)))
    capture(camera.url, tmp_path / "got.h264", seconds=3)  # raw: B-frames' first PTS is unset
    got = [s.sequence for s in read_stamps((tmp_path / "got.h264").read_bytes())]
    sent = {f.sequence: f for f in camera.frames_sent()}
    assert len(got) > 40 and got == list(range(got[0], got[0] + len(got))), "in order, no gap"
    assert all(seq in sent for seq in got)
    assert sent[got[0]].keyframe, "a reader starts at a keyframe"


def test_rtsp_parameter_sets_in_sdp_or_in_band(zoo_camera, tmp_path):
    modes = ("both", "sdp", "inband")
    cameras = {m: zoo_camera(CameraSpec(rtsp=RtspBehaviour(parameter_sets=m))) for m in modes}
    # Bounded by stream frames (60: three keyframes), not wall time: a loaded machine can
    # spend seconds starting ffmpeg, and a reader killed early has written nothing.
    readers = {m: subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-rtsp_transport", "tcp", "-i", c.url,
         "-frames:v", "60", "-c", "copy", str(tmp_path / f"{m}.h264")])
        for m, c in cameras.items()}
    sdp = {m: "sprop-parameter-sets" in probe(c.url, seconds=0.2, level="debug").log
           for m, c in cameras.items()}
    for reader in readers.values():
        assert reader.wait(60) == 0
    sps = {m: sum(nal_type("h264", n) == 7
                  for n in split_annexb((tmp_path / f"{m}.h264").read_bytes()) if n)
           for m in modes}
    assert sdp == {"both": True, "sdp": True, "inband": False}
    assert sps["both"] >= 2 and sps["inband"] >= 2
    assert sps["sdp"] <= 1, "none in band (ffmpeg may write the SDP's sets once)"


def test_rtsp_transport_limits_and_udp_loss(zoo_camera, tmp_path):
    tcp_only = zoo_camera(CameraSpec(rtsp=RtspBehaviour(transport="tcp")))
    assert probe(tcp_only.url, seconds=0.5, transport="udp", timeout=10).packets == []
    assert probe(tcp_only.url, seconds=0.5, transport="tcp").packets
    clean = zoo_camera(CameraSpec(rtsp=RtspBehaviour(transport="udp")))
    lossy = zoo_camera(CameraSpec(rtsp=RtspBehaviour(transport="udp", loss=0.1)))
    clean_log, log = capture_all([(clean.url, tmp_path / "clean.ts", 2.5, "udp"),
                                  (lossy.url, tmp_path / "lossy.ts", 2.5, "udp")])
    assert "missed" not in clean_log
    assert "RTP: missed" in log, log[-500:]


def test_rtsp_stall_and_timestamp_jump(zoo_camera, tmp_path):
    stalled = zoo_camera(CameraSpec(rtsp=RtspBehaviour(stalls=(Stall(at=1, seconds=1.5),))))
    jumping = zoo_camera(CameraSpec(rtsp=RtspBehaviour(jump_at=1, jump_seconds=300)))
    capture_all([(stalled.url, tmp_path / "stall.ts", 3.5, "tcp"),
                 (jumping.url, tmp_path / "jump.ts", 3, "tcp")])
    for path, low, high in ((tmp_path / "stall.ts", 1.4, 2.0),
                            (tmp_path / "jump.ts", 299, 301)):
        dts = [p.dts for p in file_packets(path) if p.dts is not None]
        gaps = [b - a for a, b in itertools.pairwise(dts)]
        assert len(dts) > 30 and low < max(gaps) < high, f"{path.name}: {max(gaps)}"
        assert sorted(gaps)[-2] < 0.1, "one gap only"
    sent = [f.wall_time for f in stalled.frames_sent()]
    assert max(b - a for a, b in itertools.pairwise(sent)) > 1.4


def test_rtsp_rtp_wrap_and_drift(zoo_camera, tmp_path):
    wrapping = zoo_camera(CameraSpec(rtsp=RtspBehaviour(rtp_wrap_after=3)))
    reply = probe(wrapping.url, seconds=0.3, level="trace").log
    rtptime = int(reply.split("rtptime=")[1].split(";")[0].split("'")[0].split("\\")[0])
    assert WRAP - 3 * 90000 < rtptime < WRAP, "the 32-bit RTP clock wraps within 3 s"
    fast = zoo_camera(CameraSpec(rtsp=RtspBehaviour(drift=0.05)))
    capture(fast.url, tmp_path / "fast.ts", 4)
    stamps = read_stamps((tmp_path / "fast.ts").read_bytes())
    pts = sorted(p.pts for p in file_packets(tmp_path / "fast.ts"))
    wall = stamps[-1].wall_time - stamps[0].wall_time
    assert 1.03 < (pts[-1] - pts[0]) / wall < 1.07, "timestamps run 5 % fast"


def test_rtsp_single_client(zoo_camera):
    camera = zoo_camera(CameraSpec(rtsp=RtspBehaviour(single_client=True)))
    first = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
                              "-i", camera.url, "-c", "copy", "-f", "null", "-"],
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        second = probe(camera.url, seconds=0.5)
        assert second.packets == [] and "453" in second.log, second.log
    finally:
        first.kill()
        first.wait()
    time.sleep(0.5)
    assert probe(camera.url, seconds=0.5).packets, "the camera is free again"


def test_rtsp_resolution_change_and_vfr(zoo_camera):
    changing = zoo_camera(CameraSpec(media=MediaSpec(seconds=2, second_size=(640, 360))))
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-rtsp_transport", "tcp", "-read_intervals", "%+3",
         "-show_entries", "frame=width,height", "-of", "csv=p=0", changing.url],
        capture_output=True, text=True, timeout=20).stdout.split()
    assert {"320,240", "640,360"} <= {f.strip(",") for f in frames}
    vfr = zoo_camera(CameraSpec(media=MediaSpec(vfr=True)))
    pts = sorted(p.pts for p in probe(vfr.url, seconds=2).video_packets() if p.pts is not None)
    steps = {round(b - a, 2) for a, b in itertools.pairwise(pts)}
    assert steps == {0.04, 0.08}


# ---- ffmpeg cameras: HTTP MPEG-TS (ffmpeg -listen 1) and RTMP (ffmpeg -> nginx-rtmp) --------


def test_http_ts_camera_serves_stamped_frames_to_one_client(zoo_camera, tmp_path):
    camera = zoo_camera(CameraSpec(media=MediaSpec(bframes=2, audio="aac"), kind="http-ts"))
    first = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", camera.url,
                              "-t", "2.5", "-c", "copy", str(tmp_path / "got.ts")])
    time.sleep(1)
    refused = subprocess.run(["ffprobe", "-v", "error", camera.url], capture_output=True,
                             text=True, timeout=10)
    assert refused.returncode != 0, "a second client while the first is served"
    assert first.wait(15) == 0
    got = [s.sequence for s in read_stamps((tmp_path / "got.ts").read_bytes())]
    assert got[:50] == list(range(50)), "each connection starts at the file's first frame"
    packets = file_packets(tmp_path / "got.ts")
    assert sum(p.pts != p.dts for p in packets) > len(packets) // 4
    assert len(camera.frames_sent()) >= len(got), "ffmpeg counted what it sent"
    time.sleep(0.5)  # the next ffmpeg takes the next client
    seen = probe(camera.url, seconds=1, transport=None)
    assert seen.codecs() == {"h264", "aac"} and seen.video()["has_b_frames"] >= 1


def test_http_ts_camera_stall_keeps_the_connection(zoo_camera):
    camera = zoo_camera(CameraSpec(kind="http-ts"))
    arrivals = []
    with socket.create_connection(("127.0.0.1", camera.port), timeout=5) as sock:
        sock.sendall(b"GET /cam.ts HTTP/1.1\r\nHost: zoo\r\n\r\n")
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            if sock.recv(65536):
                arrivals.append(time.monotonic())
            if len(arrivals) == 5:
                camera.stall(1.5)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps) > 1.3 and arrivals[-1] - arrivals[0] > 2.5, "silent, then sending again"


@pytest.mark.skipif(not rtmp_available(),
                    reason="nginx RTMP module not installed (scripts/setup.sh installs it)")
def test_rtmp_camera_through_nginx(zoo_camera, tmp_path):
    camera = zoo_camera(CameraSpec(media=MediaSpec(audio="aac"), kind="rtmp"))
    assert camera.url.startswith("rtmp://")
    readers = [subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", camera.url,
                                 "-t", "2", "-c", "copy", str(tmp_path / f"got{i}.flv")])
               for i in range(2)]
    assert [r.wait(20) for r in readers] == [0, 0], "nginx-rtmp serves several readers"
    for i in range(2):
        got = [s.sequence for s in read_stamps((tmp_path / f"got{i}.flv").read_bytes())]
        assert len(got) > 30 and got == list(range(got[0], got[0] + len(got)))
        streams = _ffprobe_json(tmp_path / f"got{i}.flv", "stream=codec_name", select="")
        assert {s["codec_name"] for s in streams} == {"h264", "aac"}
    assert len(camera.frames_sent()) > 50


# ---- the fixture's controls -----------------------------------------------------------------


def test_fixture_stall_kill_and_restart(zoo_camera, tmp_path):
    camera = zoo_camera()
    reader = subprocess.Popen(["timeout", "-s", "INT", "3.5", "ffmpeg", "-nostdin", "-v",
                               "error", "-y", "-rtsp_transport", "tcp", "-i", camera.url,
                               "-c", "copy", str(tmp_path / "got.ts")])
    time.sleep(1)
    camera.stall(1.5)
    reader.wait(20)
    dts = [p.dts for p in file_packets(tmp_path / "got.ts") if p.dts is not None]
    assert max(b - a for a, b in itertools.pairwise(dts)) > 1.3, "stalled on request"
    before = camera.frames_sent()[-1].sequence
    camera.kill()
    assert probe(camera.url, seconds=0.3, timeout=10).packets == []
    camera.restart()
    capture(camera.url, tmp_path / "after.ts", 1.5)
    after = [s.sequence for s in read_stamps((tmp_path / "after.ts").read_bytes())]
    assert after and after[0] > before, "numbers go on after a restart: no frame is ambiguous"
