"""One recording session: appsrc → parser → splitmuxsink in a pipeline of its own.

A session is started for a recording and finished (EOS, files finalised) when it stops or when
the camera's stream changes under it (a reconnect with new caps). Its own pipeline means a
full disk or a muxer error ends this session only: the camera, the ring and every other
consumer carry on, and the recorder opens a new session when it can.

Frames arrive from the recorder with the producer's timestamps. The session starts at a
video keyframe (media.timeline.KeyframeGate) and rebases them on that keyframe's decode time
(media.timeline.Rebase), so every file's first DTS is 0 and B-frames keep their composition
offsets, and maps them back to wall-clock time for segment names and the index.
splitmuxsink cuts segments at keyframes; MP4 is fragmented (a crash loses at most one
fragment), MKV and MPEG-TS are append-only by nature.

Each segment file is created by the session with `[recording] file_mode` before splitmuxsink's
filesink opens (and truncates) it, so a recording is never readable by others, not even for a
moment, whatever the process umask; its directories get `dir_mode`.

Segments are at least `segment_duration` long (the rule is cuts.py's): splitmuxsink's own
`max-size-time` is off, and the session, seeing every keyframe as it pushes it, asks
splitmuxsink (`split-at-running-time`) to cut where `SegmentCuts` says. Running time is the
rebased PTS (appsrc's segment starts at 0).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streamwarden.gst.buffers import retimed, timestamps
from streamwarden.gst.init import Gst
from streamwarden.gst.reaper import Reaper
from streamwarden.gst.weak import weak_method
from streamwarden.media.timeline import Bridge, KeyframeGate, Rebase, WallClock
from streamwarden.private_files import create_file, make_dirs
from streamwarden.recording.audio import AudioPlan, plan
from streamwarden.recording.cuts import SPLIT_TOLERANCE_NS, SegmentCuts
from streamwarden.recording.layout import segment_path
from streamwarden.recording.ring import Entry

log = logging.getLogger("streamwarden.recording")

__all__ = ["SPLIT_TOLERANCE_NS", "RecordingSession", "SessionCallbacks", "SessionSettings"]

# Looked up once (gi's override proxy costs about 1 µs per attribute); push runs per frame.
_OK = Gst.FlowReturn.OK
_NS = 1_000_000_000
_APPSRC_MAX_BYTES = 32 * 1024 * 1024  # a disk slower than the camera: drop, never grow forever
_PARSERS = {"video/x-h264": "h264parse", "video/x-h265": "h265parse"}


@dataclass(frozen=True)
class SessionSettings:
    base_path: Path
    stream_id: str
    fmt: str  # mp4 | mkv | ts
    segment_duration: float
    fragment_duration: float
    reason: str  # continuous | manual | event
    file_mode: int = 0o600  # [recording] file_mode
    dir_mode: int = 0o700  # [recording] dir_mode


@dataclass
class SessionCallbacks:
    """Called on the GStreamer thread as segments open and close and the session ends."""

    segment_opened: Callable[[RecordingSession, Path, float], None]
    segment_closed: Callable[[RecordingSession, Path, float], None]
    finished: Callable[[RecordingSession], None]
    failed: Callable[[RecordingSession, str, bool], None]  # (session, message, disk_full)


MP4_TIMESCALE = 90_000


def _muxer(settings: SessionSettings) -> str:
    if settings.fmt == "mp4":
        # 90 kHz (RTP's video clock, MPEG-TS's): the camera's frame steps are kept to the tick;
        # mp4mux's automatic choice (100 x the frame rate) rounds them to 0.4 ms at 25 fps
        return (f"mp4mux trak-timescale={MP4_TIMESCALE} "
                f"fragment-duration={max(100, int(settings.fragment_duration * 1000))}")
    return {"mkv": "matroskamux", "ts": "mpegtsmux"}[settings.fmt]


def _video_parser(caps: Gst.Caps, fmt: str) -> str:
    """The parser in front of the muxer. MPEG-TS has no header: each segment must carry the
    parameter sets in band, also for cameras that send them only in the SDP, so the parser
    repeats them before every keyframe (`config-interval=-1`)."""
    parser = _PARSERS.get(caps.get_structure(0).get_name(), "identity")
    return f"{parser} config-interval=-1" if fmt == "ts" and parser != "identity" else parser


def audio_plan(fmt: str, caps: Gst.Caps) -> AudioPlan:
    structure = caps.get_structure(0)
    ok, version = structure.get_int("mpegversion")
    return plan(fmt, structure.get_name(), version if ok else None)


def _with_fields(caps: Gst.Caps, fields: tuple[tuple[str, int], ...]) -> Gst.Caps:
    if not fields:
        return caps
    structure = caps.get_structure(0).copy()
    for name, value in fields:
        structure.set_value(name, value)
    changed = Gst.Caps.new_empty()
    changed.append_structure(structure)
    return changed


class RecordingSession:
    def __init__(self, settings: SessionSettings, video_caps: Gst.Caps,
                 audio_caps: Gst.Caps | None, callbacks: SessionCallbacks, reaper: Reaper):
        self.settings = settings
        self.callbacks = callbacks
        self._reaper = reaper
        self.video_caps = video_caps
        # how the camera's audio goes into this format (the recorder tells the operator)
        self.audio_plan = audio_plan(settings.fmt, audio_caps) if audio_caps else None
        self.audio_caps = audio_caps if self.audio_plan and self.audio_plan.recorded else None
        self.start_wall: float | None = None  # set when the rebase is anchored
        self._gate = KeyframeGate()  # a file starts at a video keyframe
        self._rebase = Rebase()  # ...whose decode time is the file's 0
        # the camera's clock jumping is bridged per track: the file never goes back or leaps
        self._bridges = {"video": Bridge(), "audio": Bridge()}
        self._clock = WallClock()  # the file's time → wall time, kept in step with arrivals
        self._cuts = SegmentCuts(int(settings.segment_duration * Gst.SECOND))
        self.frames = 0
        self.dropped = 0
        self.ended = False
        self.last_wall: float | None = None
        self.current_path: Path | None = None
        self.locations: list[Path] = []  # every file splitmuxsink was told to write
        self.announced: set[Path] = set()  # ...those it reported opened
        self.closed: set[Path] = set()  # ...and those it finalised
        self._taken: set[Path] = set()  # unfinished ones already handed to the index
        self.pipeline = self._build()

    def _build(self) -> Gst.Pipeline:
        s = self.settings
        # No queue before splitmuxsink: it queues each input itself; another queue would only
        # add a thread hop per frame.
        desc = (
            f"appsrc name=v format=time max-bytes={_APPSRC_MAX_BYTES} leaky-type=downstream "
            f'caps="{self.video_caps.to_string()}" ! {_video_parser(self.video_caps, s.fmt)} '
            "! sm.video "
        )
        audio = self.audio_plan
        if self.audio_caps is not None and audio is not None:
            caps = _with_fields(self.audio_caps, audio.caps_fields)
            desc += (
                f"appsrc name=a format=time max-bytes={_APPSRC_MAX_BYTES} leaky-type=downstream "
                f'caps="{caps.to_string()}" ! {audio.chain} ! sm.audio_0 '
            )
        # max-size-time=0: the session decides where segments end (see cuts.py)
        desc += f'splitmuxsink name=sm max-size-time=0 muxer="{_muxer(s)}"'
        pipeline = Gst.parse_launch(desc)
        pipeline.set_name(f"record-{s.stream_id}")
        self._video_src = pipeline.get_by_name("v")
        self._audio_src = pipeline.get_by_name("a")
        sink = self._sink = pipeline.get_by_name("sm")
        sink.connect("format-location-full", weak_method(self._location))
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        self._bus_handler = bus.connect("message", weak_method(self._on_message))
        return pipeline

    def start(self) -> None:
        self.pipeline.set_state(Gst.State.PLAYING)

    # ---- data (streaming threads, under the recorder's lock) ------------------------------

    def push(self, entry: Entry) -> None:
        """One frame, in decode order; nothing before the first video keyframe."""
        if self.ended:
            return
        video = entry.kind == "video"
        gate = self._gate
        if not gate.is_open and not gate.admit(video, entry.keyframe):
            return
        mapped = self._map(entry)
        src = self._video_src if video else self._audio_src
        if src is None or mapped is None:
            return
        out_pts, out_dts = mapped
        if video and entry.keyframe:
            self._clock.observe(out_dts if out_dts is not None else out_pts, entry.wall)
            cut = self._cuts.keyframe(out_pts)
            if cut is not None:  # asked before the keyframe is pushed: it opens the segment
                self._sink.emit("split-at-running-time", cut)
        if src.push_buffer(retimed(entry.buffer, out_pts, out_dts, entry.size)) != _OK:
            self.dropped += 1
        elif video:
            self.frames += 1
            self.last_wall = entry.wall

    def _map(self, entry: Entry) -> tuple[int, int | None] | None:
        """The frame's (pts, dts) in the file: bridged across jumps of the camera's clock,
        rebased on the first keyframe's decode time (which this anchors)."""
        pts, dts = timestamps(entry.buffer)
        decode = dts if dts is not None else pts
        if decode is None:
            return None
        shift = self._bridges[entry.kind].adjust(decode, int(entry.arrival * _NS))
        if shift:
            pts = pts + shift if pts is not None else None
            dts = dts + shift if dts is not None else None
        if self.start_wall is None:  # the keyframe that opened the gate: the file's 0
            self._rebase.anchor(decode + shift)
            self.start_wall = entry.wall
            self._clock.anchor(entry.wall)
        return self._rebase.map(pts, dts)

    def wall_of(self, running_time_ns: int) -> float:
        return self._clock.wall_of(running_time_ns)

    @property
    def bridged(self) -> int:
        """Jumps of the camera's clock this session carried its files across."""
        return sum(bridge.jumps for bridge in self._bridges.values())

    def _location(self, _sink, _fragment_id: int, first_sample: Gst.Sample) -> str:
        """Streaming thread: name the next segment after its first frame's wall-clock time."""
        buffer = first_sample.get_buffer() if first_sample else None
        pts = buffer.pts if buffer is not None and buffer.pts != Gst.CLOCK_TIME_NONE else 0
        s = self.settings
        path = segment_path(s.base_path, s.stream_id, self.wall_of(pts), s.fmt)
        self.locations.append(path)
        try:  # created here with its mode; filesink's fopen("wb") then keeps that mode
            make_dirs(path.parent, s.dir_mode)
            create_file(path, s.file_mode)
        except OSError as exc:  # filesink fails on it too, and the session ends with the error
            log.warning("stream %s: cannot create %s: %s", s.stream_id, path, exc.strerror)
        return str(path)

    def take_unfinished(self) -> list[Path]:
        """After a failure: files this session began but did not finalise (the cut one, one
        it created but had not yet announced), each returned once. Until its pipeline has
        stopped, splitmuxsink may still open another: ask again until `stopped`."""
        paths = [p for p in self.locations if p not in self.closed and p not in self._taken]
        self._taken.update(paths)
        return paths

    @property
    def stopped(self) -> bool:
        """The pipeline is down (NULL): it will not create another file."""
        return self.pipeline.get_state(0)[1] == Gst.State.NULL

    # ---- control (GStreamer thread) -------------------------------------------------------

    def finish(self) -> None:
        """Stop taking frames; finalise the open segment. `finished` is called when done."""
        if self.ended:
            return
        self.ended = True
        if not self._rebase.anchored:  # never got a frame: nothing to finalise
            self._dispose()
            self.callbacks.finished(self)
            return
        for src in (self._video_src, self._audio_src):
            if src is not None:
                src.emit("end-of-stream")

    def _dispose(self) -> None:
        bus = self.pipeline.get_bus()
        bus.disconnect(self._bus_handler)
        bus.remove_signal_watch()
        self._reaper.dispose(self.pipeline)

    def _on_message(self, _bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.ELEMENT:
            structure = message.get_structure()
            name = structure.get_name() if structure else ""
            if name in ("splitmuxsink-fragment-opened", "splitmuxsink-fragment-closed"):
                path = Path(structure.get_string("location"))
                ok, running_time = structure.get_uint64("running-time")
                wall = self.wall_of(running_time if ok else 0)
                if name.endswith("opened"):
                    self.current_path = path
                    self.announced.add(path)
                    self.callbacks.segment_opened(self, path, wall)
                else:
                    self.closed.add(path)
                    self.callbacks.segment_closed(self, path, wall)
        elif message.type == Gst.MessageType.EOS:
            self._dispose()
            self.callbacks.finished(self)
        elif message.type == Gst.MessageType.ERROR:
            err, _debug = message.parse_error()
            disk_full = err.matches(Gst.ResourceError.quark(), Gst.ResourceError.NO_SPACE_LEFT)
            self.ended = True
            self._dispose()
            self.callbacks.failed(self, err.message, disk_full)
