"""Real cameras' traits, recorded: every frame a zoo camera sends is kept and decodes.

Cameras come from the zoo (tests/zoo: media encoded once by ffmpeg, served by GStreamer's RTSP
server library or ffmpeg over HTTP; independent of streamwarden), several per service so a
handful of services covers every trait. Each recording is cut in 2 s segments and read back
with ffprobe/ffmpeg (tests/zoo/recorded.py): per file, the frames it holds (the stamps the
camera put in each frame), the frames a decoder gets out of it, the decode-time order and the
audio track. Between the files of a camera no frame may be missing outside a real outage.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets.sync.client import connect

from streamwarden.config.model import (
    AppSection,
    Config,
    RecordingSection,
    RestreamSection,
    SourceSettings,
    StreamConfig,
)
from streamwarden.demo.stamp import read_stamps
from tests.conftest import state_of, wait_for
from tests.test_live import LiveReader, ws_url
from tests.zoo.ffmpeg_camera import rtmp_available
from tests.zoo.media import ensure_media
from tests.zoo.probe import file_packets, probe
from tests.zoo.recorded import FileReport, analyse, decoded_in_sequence
from tests.zoo.spec import CameraSpec, MediaSpec, RtspBehaviour, Stall

M, R = MediaSpec, RtspBehaviour
FAST = SourceSettings(timeout=2, restart_timeout=1, buffer_duration=4)
SEGMENTS = 3  # closed segments each camera must have before the service stops


@dataclass
class Trait:
    """A zoo camera and what its recording must show."""

    spec: CameraSpec
    audio: str = "-"  # the audio codec the files must hold (ffprobe's name)
    transport: str = "tcp"
    lossy: bool = False  # frames really lost on the way (UDP loss): not counted against us
    late_audio: bool = False  # the first file may lack audio (it came after the video)
    exact_steps: bool = True  # display intervals are the camera's frame steps, to the tick
    settings: dict = field(default_factory=dict)

    @property
    def leading(self) -> int:
        """Frames after a keyframe (decode order) shown before it: an open GOP's leading
        pictures (x265's default), which reference the GOP before. A file that starts at
        such a keyframe cannot decode them on its own, whoever cut it; played in sequence
        (a clip, the timeline) they decode."""
        packets = file_packets(ensure_media(self.spec.media).video[0])
        key = next(i for i, p in enumerate(packets) if p.keyframe and i > 0)
        return sum(1 for p in itertools.takewhile(lambda p: p.pts < packets[key].pts,
                                                  packets[key + 1:]))


def record_traits(service_factory, zoo_camera, tmp_path: Path, fmt: str,
                  traits: dict[str, Trait], seconds: float = 2.0):
    """Start the cameras and one recording service; wait for SEGMENTS closed segments per
    camera; stop the service (files finalised). Returns (files per id, views, cameras)."""
    cameras = {sid: zoo_camera(t.spec) for sid, t in traits.items()}
    base = tmp_path / f"rec-{fmt}"
    svc = service_factory(Config(
        app=AppSection(database=str(tmp_path / f"{fmt}.db")),
        recording=RecordingSection(base_path=str(base), segment_duration=seconds, format=fmt),
        stream_defaults=FAST, restream=RestreamSection(enabled=False),
        streams=[StreamConfig(id=sid, uri=cameras[sid].url, enable_recording=True,
                              transport=t.transport, **t.settings)
                 for sid, t in traits.items()]))
    client = svc.client()

    def segments(sid: str) -> int:
        consumers = state_of(client, sid)["statistics"]["consumers"]
        return next((c["segments"] for c in consumers if c["kind"] == "recorder"), 0)

    wait_for(lambda: all(segments(sid) > SEGMENTS for sid in traits), 60,
             message=f"{SEGMENTS} closed segments per camera")
    views = {sid: state_of(client, sid) for sid in traits}
    views["_metrics"] = client.get("/metrics").text
    svc.stop()
    files = {sid: sorted((base / sid).glob(f"*/*.{fmt}")) for sid in traits}
    return files, views, cameras


def check_recorded(sid: str, trait: Trait, paths: list[Path], view: dict) -> list[FileReport]:
    """Every file decodes whole, in DTS order, with the audio track; no frame missing."""
    files = [analyse(path) for path in paths]
    assert len(files) >= SEGMENTS, f"{sid}: {len(files)} files"
    health = view["health"]
    assert health["retry_count"] == 0, f"{sid}: {health}"
    leading = trait.leading
    for report in files:
        where = f"{sid} {report.path}"
        assert report.stamps > 0, where
        assert report.dts_backwards == 0, f"{where}: DTS goes back"
        if not trait.lossy:
            # a file cut at an open GOP's keyframe: its leading pictures need the file before
            assert report.stamps - leading <= report.decoded <= report.stamps, f"{where}: {report}"
            assert report.missing == 0 and report.disordered == 0, f"{where}: {report}"
    if leading and not trait.lossy:
        in_sequence = decoded_in_sequence(paths)
        assert in_sequence >= sum(report.stamps for report in files) - leading, sid
    audio = [report.audio for report in files]
    expected = [trait.audio] * len(files)
    if trait.late_audio:
        audio, expected = audio[1:], expected[1:]
    assert audio == expected, f"{sid}: audio {audio}"
    if not trait.lossy:
        for before, after in itertools.pairwise(files):
            assert after.first == before.last + 1, f"{sid}: frames lost between files"
    if trait.exact_steps and not trait.lossy:
        assert_camera_steps(sid, trait, files)
    if trait.spec.media.bframes:
        assert all(report.reordered > report.stamps // 3 for report in files[:-1]), \
            f"{sid}: B-frames kept as such (PTS ≠ DTS)"
    return files


TICK = 1 / 90_000  # RTP's video clock, MPEG-TS's and the MP4 files' timescale


def assert_camera_steps(sid: str, trait: Trait, files: list[FileReport]) -> None:
    """After the first file, every display interval is the camera's frame step within one
    90 kHz tick (ffprobe's times have 1 µs of rounding): the camera's own times, not times
    re-stamped from arrival. The last intervals of the last file are left out (one more than
    the camera's B-frames): the stop can cut a mini-GOP whose B-frames never came, so its
    display order ends with a step of several frames."""
    frame = 1 / trait.spec.media.fps
    tail = (trait.spec.media.bframes or 0) + 1
    steps = [step for report in files[1:] for step in report.steps][:-tail]
    off = [round((step - frame) / TICK, 2) for step in steps if abs(step - frame) > TICK + 2e-6]
    assert steps and not off, f"{sid}: {len(off)} of {len(steps)} steps off (ticks) {off[:8]}"


def metric(text: str, name: str, stream: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}{{stream="{stream}"'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} for {stream} not in /metrics")


def test_frame_reordering_and_h265_are_recorded_whole_in_mp4(service_factory, zoo_camera,
                                                              tmp_path):
    traits = {
        "b2": Trait(CameraSpec(media=M(bframes=2, audio="aac")), audio="aac"),
        "pyramid": Trait(CameraSpec(media=M(bframes=3, pyramid=True))),
        "h265": Trait(CameraSpec(media=M(codec="h265", audio="opus")), audio="opus"),
        "h265-pyramid": Trait(CameraSpec(media=M(codec="h265", bframes=4, pyramid=True))),
    }
    files, views, _ = record_traits(service_factory, zoo_camera, tmp_path, "mp4", traits)
    for sid, trait in traits.items():
        check_recorded(sid, trait, files[sid], views[sid])


def test_audio_codecs_and_parameter_sets_in_mp4_and_ts(service_factory, zoo_camera, tmp_path):
    """G.711 becomes AAC (audio only) where the container cannot hold it; MPEG-TS segments
    of a camera that sends SPS/PPS only in the SDP play on their own; an HTTP MPEG-TS
    camera's AAC (MPEG-2 AAC, arriving after the video) is recorded; an RTMP camera's
    B-frames and AAC too. Every camera's frame steps reach the files to the tick."""
    mp4 = {
        "pcma": Trait(CameraSpec(media=M(audio="pcma")), audio="aac"),
        "http-ts": Trait(CameraSpec(media=M(bframes=2, audio="aac"), kind="http-ts"),
                         audio="aac", late_audio=True),
    }
    if rtmp_available():  # FLV's 1 ms times, carried as sent
        mp4["rtmp"] = Trait(CameraSpec(media=M(bframes=2, audio="aac"), kind="rtmp"),
                            audio="aac", late_audio=True)
    ts = {
        "pcmu": Trait(CameraSpec(media=M(audio="pcmu")), audio="aac"),
        "sdp-only": Trait(CameraSpec(media=M(bframes=2), rtsp=R(parameter_sets="sdp"))),
        "h265-sdp-only": Trait(CameraSpec(media=M(codec="h265"), rtsp=R(parameter_sets="sdp"))),
    }
    files, views, _ = record_traits(service_factory, zoo_camera, tmp_path, "mp4", mp4)
    for sid, trait in mp4.items():
        check_recorded(sid, trait, files[sid], views[sid])
    consumers = views["pcma"]["statistics"]["consumers"]
    recorder = next(c for c in consumers if c["kind"] == "recorder")
    assert "recorded as AAC" in recorder["audio"] and views["pcma"]["health"][
        "recording_warning"] is None, "converted, not lost"
    files, views, _ = record_traits(service_factory, zoo_camera, tmp_path, "ts", ts)
    for sid, trait in ts.items():
        check_recorded(sid, trait, files[sid], views[sid])


def test_timestamp_faults_gop_vfr_and_resolution_change(service_factory, zoo_camera,
                                                        tmp_path):
    """Jumps of the camera's clock (±300 s, over TCP and UDP), a wrapping RTP clock, drift, a
    GOP longer than a segment, variable frame rate and a mid-stream resolution change: no
    reconnect, every frame kept, every file monotonic; each jump counted once."""
    traits = {
        "jump-fwd": Trait(CameraSpec(rtsp=R(jump_at=3, jump_seconds=300)), exact_steps=False),
        "jump-back": Trait(CameraSpec(media=M(bframes=2), rtsp=R(jump_at=3,
                                                                  jump_seconds=-300)),
                           exact_steps=False),
        "udp-jump": Trait(CameraSpec(rtsp=R(transport="udp", jump_at=3, jump_seconds=300)),
                          transport="udp", exact_steps=False),
        "wrap": Trait(CameraSpec(media=M(bframes=2), rtsp=R(rtp_wrap_after=3))),
        # 2 % fast: followed at up to 2.5 %, so its steps are as far off as its clock
        "drift": Trait(CameraSpec(rtsp=R(drift=0.02)), exact_steps=False),
        "long-gop": Trait(CameraSpec(media=M(gop_seconds=3, seconds=6))),
        "vfr": Trait(CameraSpec(media=M(vfr=True)), exact_steps=False),
        "res-change": Trait(CameraSpec(media=M(seconds=2, second_size=(640, 360)))),
    }
    files, views, _ = record_traits(service_factory, zoo_camera, tmp_path, "mp4", traits)
    reports = {sid: check_recorded(sid, trait, files[sid], views[sid])
               for sid, trait in traits.items()}
    for sid in ("jump-fwd", "jump-back", "udp-jump"):
        assert views[sid]["statistics"]["discontinuities"] == 1, sid
        assert metric(views["_metrics"], "streamwarden_stream_discontinuities_total", sid) == 1
    assert all(views[sid]["statistics"]["discontinuities"] == 0
               for sid in ("wrap", "drift", "long-gop", "vfr", "res-change"))
    sizes = {size for report in reports["res-change"] for size in report.sizes}
    assert sizes == {"320x240", "640x360"}


def test_udp_loss_is_recorded_and_counted(service_factory, zoo_camera, tmp_path):
    traits = {"lossy": Trait(CameraSpec(rtsp=R(transport="udp", loss=0.02)), transport="udp",
                             lossy=True)}
    files, views, _ = record_traits(service_factory, zoo_camera, tmp_path, "mp4", traits)
    reports = check_recorded("lossy", traits["lossy"], files["lossy"], views["lossy"])
    stats = views["lossy"]["statistics"]
    assert stats["lost_packets"] > 0 and stats["damaged_frames"] > 0, stats
    assert metric(views["_metrics"], "streamwarden_stream_lost_packets_total", "lossy") > 0
    assert metric(views["_metrics"], "streamwarden_stream_damaged_frames_total", "lossy") > 0
    kept = sum(report.stamps for report in reports)
    span = reports[-1].last - reports[0].first + 1
    assert kept > 0.8 * span, "most frames kept: only what the network lost is missing"


# ---- restream, clip and live view of reordered streams ----------------------------------------


def decoded_in_order(path: Path) -> tuple[int, list[int]]:
    """(frames decoded, their stamps in display order as decoded) of a file or capture."""
    result = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                             "frame=pts_time", "-of", "json", str(path)],
                            capture_output=True, text=True, timeout=60)
    frames = json.loads(result.stdout or "{}").get("frames", [])
    return len(frames), [float(f["pts_time"]) for f in frames if f.get("pts_time")]


def test_restream_clip_and_live_view_of_b_frames_decode_in_order(service_factory, zoo_camera,
                                                                  tmp_path):
    pyramid = zoo_camera(CameraSpec(media=M(bframes=3, pyramid=True, audio="pcma")))
    hevc = zoo_camera(CameraSpec(media=M(codec="h265", bframes=2)))
    svc = service_factory(Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), segment_duration=2),
        stream_defaults=FAST, restream=RestreamSection(listen="127.0.0.1:8554"),
        streams=[StreamConfig(id="b", uri=pyramid.url, enable_recording=True),
                 StreamConfig(id="hevc", uri=hevc.url)]))
    client = svc.client()
    wait_for(lambda: all(state_of(client, s)["health"]["state"] == "streaming"
                         for s in ("b", "hevc")), 20, message="streams up")

    # the RTSP restream: B-frames and the camera's own G.711 audio, every frame in order
    url = f"rtsp://127.0.0.1:{svc.rtsp_port}/b"
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i",
                          url, "-t", "3", "-map", "0:v", "-c", "copy", "-f", "h264", "-"],
                         capture_output=True, timeout=30)  # raw: stamps in decode order
    stamps = [s.sequence for s in read_stamps(raw.stdout)]
    assert len(stamps) > 40 and stamps == list(range(stamps[0], stamps[0] + len(stamps)))
    seen = probe(url, seconds=2)
    assert seen.codecs() == {"h264", "pcm_alaw"}, "the restream keeps the camera's audio"
    packets = [p for p in seen.video_packets() if p.dts is not None]
    assert sum(p.pts != p.dts for p in packets) > len(packets) // 3, "B-frames re-served"
    played = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
                             "-i", url, "-t", "3", "-map", "0:v", "-f", "null", "-"],
                            capture_output=True, text=True, timeout=30)
    assert played.returncode == 0 and "error" not in played.stderr.lower(), played.stderr

    # the live view: trun composition offsets, one frame per fragment, all decode in order
    for sid, codec in (("b", "avc1."), ("hevc", "hvc1.")):
        with LiveReader(ws_url(svc, sid)) as reader:
            reader.read(60)
        assert reader.announce["codec"].startswith(codec), reader.announce
        movie = tmp_path / f"live-{sid}.mp4"
        movie.write_bytes(reader.init + b"".join(reader.fragments))
        decoded, pts = decoded_in_order(movie)
        assert decoded == 60 and pts == sorted(pts) and len(set(pts)) == 60, sid
        offsets = {f[f.index(b"trun") + 28:f.index(b"trun") + 32] for f in reader.fragments}
        assert len(offsets) > 2, f"{sid}: composition offsets carried"

    # a clip of the recording: every packet's PTS/DTS as recorded, decodes without error
    def complete() -> list[dict]:
        rows = client.get("/recordings", params={"stream_id": "b"}).json()
        return [row for row in rows if row["status"] == "complete"]

    wait_for(lambda: len(complete()) >= 2, 20, message="segments recorded")
    first, second = complete()[:2]
    answer = client.get("/streams/b/clip", params={"start": first["start"],
                                                   "end": second["end"]})
    assert answer.status_code == 200, answer.text
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(answer.content)
    packets = file_packets(clip)
    assert sum(p.pts != p.dts for p in packets) > len(packets) // 3
    check = subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip), "-map", "0:v", "-f",
                            "null", "-"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "error" not in check.stderr.lower(), check.stderr
    decoded, _ = decoded_in_order(clip)
    assert decoded == len(packets)


# ---- a stalled camera, a camera for one client ------------------------------------------------


def test_a_stalled_camera_is_detected_within_timeout_and_recovered(service_factory,
                                                                   zoo_camera):
    camera = zoo_camera(CameraSpec(rtsp=R(stalls=(Stall(at=3, seconds=6),))))
    svc = service_factory(Config(stream_defaults=SourceSettings(timeout=2, restart_timeout=1),
                                 streams=[StreamConfig(id="cam", uri=camera.url)]))
    client = svc.client()
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 20,
             message="streaming")
    wait_for(lambda: (state_of(client, "cam")["health"]["last_frame_age_s"] or 0) > 0.3, 10,
             interval=0.05, message="the stall begins")
    began = time.monotonic() - state_of(client, "cam")["health"]["last_frame_age_s"]
    wait_for(lambda: state_of(client, "cam")["health"]["state"] != "streaming", 10,
             interval=0.05, message="the stall is noticed")
    detected = time.monotonic() - began
    assert detected <= 2 + 1, f"detected after {detected:.2f} s (timeout 2 s)"
    view = state_of(client, "cam")["health"]
    assert view["last_retry_reason"] == "timeout", view
    wait_for(lambda: state_of(client, "cam")["health"]["state"] == "streaming", 15,
             message="recovered after the stall")


def test_a_single_client_camera_serves_every_feature_over_one_connection(service_factory,
                                                                         zoo_camera, tmp_path):
    camera = zoo_camera(CameraSpec(rtsp=R(single_client=True)))
    svc = service_factory(Config(
        app=AppSection(database=str(tmp_path / "index.db")),
        recording=RecordingSection(base_path=str(tmp_path / "rec"), segment_duration=2),
        stream_defaults=FAST, restream=RestreamSection(listen="127.0.0.1:8554"),
        streams=[StreamConfig(id="one", uri=camera.url, enable_recording=True,
                              enable_inference=True)]))
    client = svc.client()
    wait_for(lambda: state_of(client, "one")["health"]["state"] == "streaming", 20,
             message="streaming")
    reader = subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-rtsp_transport", "tcp",
                               "-i", f"rtsp://127.0.0.1:{svc.rtsp_port}/one", "-t", "4", "-c",
                               "copy", "-f", "null", "-"], stderr=subprocess.PIPE, text=True)
    mjpeg = client.stream("GET", "/streams/one/mjpeg", params={"fps": 2})
    with mjpeg as answer, LiveReader(ws_url(svc, "one")) as live:
        assert answer.status_code == 200
        live.read(25)
        received = b""
        for chunk in answer.iter_bytes():  # a whole JPEG picture (SOI ... EOI) arrives
            received += chunk
            if b"\xff\xd9" in received[received.find(b"\xff\xd8") + 2:]:
                break
        assert b"\xff\xd8" in received, "MJPEG frames flow"
        wait_for(lambda: (state_of(client, "one")["health"].get("inference") or {}).get(
            "frames_seen", 0) > 0, 30, message="the detector sees frames")
    assert reader.wait(30) == 0, reader.stderr.read()
    view = state_of(client, "one")
    kinds = {c["kind"] for c in view["statistics"]["consumers"]}
    assert {"recorder", "pixels"} <= kinds, kinds
    assert view["health"]["retry_count"] == 0, "one connection all along"
    with connect(ws_url(svc, "one"), open_timeout=10):
        pass
    assert state_of(client, "one")["health"]["retry_count"] == 0
