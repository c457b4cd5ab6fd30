"""A synthetic RTSP camera: GstRtspServer replaying a pre-encoded clip at real-time pace.

Used by the built-in demo, by the tests (as a real RTSP peer on 127.0.0.1) and by the
benchmarks. It encodes nothing while serving: access units come from memory and are pushed
through `appsrc` with live timestamps, looping forever, so one camera costs almost no CPU.
Run `python -m streamwarden.demo.camera --port 8555 --path /demo` for a separate process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from streamwarden.demo.clip import ClipSpec, LoadedClip, load_clip
from streamwarden.demo.stamp import stamp_access_unit
from streamwarden.gst.init import GLib, Gst, GstRtspServer

log = logging.getLogger(__name__)


class SentLog:
    """One line per video unit sent, `MOUNT SEQUENCE WALL_TIME`: the stamp it carries.

    Lets a benchmark know when each frame of the clip left the camera (frame = sequence
    modulo the clip's length), e.g. to tell how long after an object appeared it was detected.
    """

    def __init__(self, handle: TextIO):
        self._handle = handle
        self._lock = threading.Lock()

    def write(self, mount: str, sequence: int, wall: float) -> None:
        with self._lock:
            self._handle.write(f"{mount} {sequence} {wall:.6f}\n")
            self._handle.flush()


class _Feeder:
    """Pushes a clip's units into a media's appsrc elements in a loop, paced by wall time."""

    def __init__(self, clip: LoadedClip, video_src: Gst.Element, audio_src: Gst.Element | None,
                 sent: tuple[SentLog, str] | None = None):
        self._clip = clip
        self._video_src = video_src
        self._audio_src = audio_src
        self._sent = sent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera-feeder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _schedule(self):
        """Yield (due_offset_ns, appsrc, unit) forever, video and audio interleaved by time."""
        video, audio = self._clip.video, self._clip.audio
        loop_ns = sum(u.duration_ns for u in video)
        base = 0
        while True:
            events = []
            t = 0
            for unit in video:
                events.append((base + t, 0, unit))
                t += unit.duration_ns
            t = 0
            for unit in audio:
                if t >= loop_ns:
                    break
                events.append((base + t, 1, unit))
                t += unit.duration_ns
            events.sort(key=lambda e: (e[0], e[1]))
            for due, kind, unit in events:
                src = self._video_src if kind == 0 else self._audio_src
                if src is not None:
                    yield due, src, unit
            base += loop_ns

    def _running_time_offset(self, src: Gst.Element, due: int) -> int | None:
        """Offset that maps schedule time to the pipeline's running time (None before PLAYING)."""
        clock = src.get_clock()
        if clock is None:
            return None
        return clock.get_time() - src.get_base_time() - due

    def _run(self) -> None:
        # Wait for PLAYING (a clock) so the first unit sent is the clip's first keyframe.
        offset = self._running_time_offset(self._video_src, 0)
        while offset is None:
            if self._stop.wait(0.01):
                return
            offset = self._running_time_offset(self._video_src, 0)
        start = time.monotonic_ns()
        sequence = 0
        for due, src, unit in self._schedule():
            delay = (start + due - time.monotonic_ns()) / 1e9
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            data = unit.data
            if src is self._video_src:
                wall = time.time()
                data = stamp_access_unit(self._clip.spec.codec, data, sequence, wall)
                if self._sent is not None:
                    self._sent[0].write(self._sent[1], sequence, wall)
                sequence += 1
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = max(0, due + offset)
            buf.duration = unit.duration_ns
            if not unit.keyframe:
                buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
            ret = src.emit("push-buffer", buf)
            if ret not in (Gst.FlowReturn.OK,):
                log.debug("camera feeder stops: %s", ret)
                return


class _ClipFactory(GstRtspServer.RTSPMediaFactory):
    """Media factory whose pipeline is fed from memory; one shared pipeline for all clients."""

    def __init__(self, clip: LoadedClip, sent: tuple[SentLog, str] | None = None):
        super().__init__()
        self._clip = clip
        self._sent = sent
        self.set_shared(True)
        self.connect("media-configure", self._on_media_configure)

    def do_create_element(self, url):
        clip = self._clip
        codec = clip.spec.codec
        parser, pay = f"{codec}parse", f"rtp{codec}pay"
        desc = (
            f"( appsrc name=vsrc is-live=true format=time "
            f'caps="{clip.video_caps}" ! {parser} ! {pay} name=pay0 pt=96 '
        )
        if clip.audio:
            desc += (
                "appsrc name=asrc is-live=true format=time "
                'caps="audio/mpeg,mpegversion=4,stream-format=adts" ! aacparse ! '
                "rtpmp4gpay name=pay1 pt=97 "
            )
        return Gst.parse_launch(desc + ")")

    def _on_media_configure(self, _factory, media) -> None:
        element = media.get_element()
        feeder = _Feeder(self._clip, element.get_by_name("vsrc"), element.get_by_name("asrc"),
                         self._sent)
        media.connect("unprepared", lambda *_: feeder.stop())
        feeder.start()


@dataclass
class CameraMount:
    path: str
    spec: ClipSpec


class SyntheticCamera:
    """An RTSP server on `host:port` with one mount per clip; attach to a GLib main context."""

    def __init__(self, mounts: list[CameraMount], port: int, host: str = "127.0.0.1",
                 sent: SentLog | None = None):
        self.port = port
        self.host = host
        self._server = GstRtspServer.RTSPServer()
        self._server.set_address(host)
        self._server.set_service(str(port))
        points = self._server.get_mount_points()
        for mount in mounts:
            factory = _ClipFactory(load_clip(mount.spec), (sent, mount.path) if sent else None)
            points.add_factory(mount.path, factory)
        self._source_id: int | None = None

    def url(self, path: str) -> str:
        return f"rtsp://{self.host}:{self.port}{path}"

    def attach(self, context: GLib.MainContext | None = None) -> None:
        self._source_id = self._server.attach(context)
        if self._source_id == 0:
            raise OSError(f"synthetic camera could not listen on {self.host}:{self.port}")

    def detach(self) -> None:
        if self._source_id:
            GLib.source_remove(self._source_id)
            self._source_id = None
        pool = self._server.get_session_pool()
        pool.filter(lambda _pool, _session: GstRtspServer.RTSPFilterResult.REMOVE)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a synthetic RTSP camera (no live encode).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8555)
    parser.add_argument("--path", action="append", help="mount path (repeatable)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--gop", type=int, default=25)
    parser.add_argument("--codec", choices=("h264", "h265"), default="h264")
    parser.add_argument("--audio", action="store_true")
    parser.add_argument("--image", help="a still picture to show instead of the test pattern")
    parser.add_argument("--bitrate", type=int, default=800, help="kbit/s")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern (snow: costly)")
    parser.add_argument("--clip", help="serve this encoded elementary stream (--codec, --width, "
                                       "--height, --fps say what it is) as it is")
    parser.add_argument("--log", help="append a line per video frame sent: MOUNT SEQ WALL")
    args = parser.parse_args(argv)
    spec = ClipSpec(
        width=args.width, height=args.height, fps=args.fps, seconds=args.seconds,
        codec=args.codec, gop=args.gop, audio=args.audio, bitrate_kbps=args.bitrate,
        pattern=args.pattern, image=str(Path(args.image).resolve()) if args.image else None,
        encoded=str(Path(args.clip).resolve()) if args.clip else None,
    )
    paths = args.path or ["/stream"]
    sent = SentLog(open(args.log, "a")) if args.log else None  # noqa: SIM115 (process-long)
    camera = SyntheticCamera([CameraMount(p, spec) for p in paths], args.port, args.host, sent)
    loop = GLib.MainLoop()
    camera.attach(None)
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {camera.url(paths[0])}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
