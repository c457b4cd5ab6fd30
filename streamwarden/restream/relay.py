"""The restream consumer: one tap on a camera's tees feeding every RTSP reader's media.

GstRtspServer serves each mount from one shared media pipeline whose `appsrc`s this relay
feeds, so ten readers cost the camera one connection and the service one copy of each frame.
The relay is attached only while some reader is connected. Each media ("target") starts at
the next keyframe (media.timeline.KeyframeGate); timestamps are rebased from that keyframe's
decode time onto the media pipeline's own running time (media.timeline.Rebase, so B-frames
keep their composition offsets), and re-anchored when the camera reconnects, so readers
stay connected through outages and resume when frames flow again. A jump of the camera's
clock without a reconnect is bridged per track (media.timeline.Bridge), once for all medias:
readers see time run on, neither a leap they would wait for nor a step back that a media
would drop everything after. Pushing never blocks: a
reader that stalls is the RTSP server's business (its per-client backlog), not the camera's
or the recorder's.

With `[restream] fallback = "slate"`, a camera silent for OUTAGE_S makes every media switch
to the pre-encoded "stream offline" slate (slate.py; new caps on its appsrc, frames pushed
from the GStreamer thread's tick), and back to the camera at the camera's next keyframe,
with the camera's caps set again, so decoders see a clean keyframe on each switch.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from streamwarden.consumers.base import Consumer, appsink_tap
from streamwarden.gst.buffers import is_keyframe, retimed, timestamps
from streamwarden.gst.init import Gst
from streamwarden.media.timeline import Bridge, KeyframeGate, Rebase
from streamwarden.restream.slate import SLATES, Slate

OUTAGE_S = 2.0  # no camera frame for this long: show the slate (cameras below 0.5 fps: sorry)
_STREAM_START = Gst.EventType.STREAM_START
_PROBE_OK = Gst.PadProbeReturn.OK
_FLOW_OK = Gst.FlowReturn.OK


@dataclass(eq=False)
class RelayTarget:
    """One media pipeline of the RTSP server (shared by all readers of a mount)."""

    video: Gst.Element
    audio: Gst.Element | None
    # Readers start at a keyframe, whose decode time is anchored on the media's running time.
    gate: KeyframeGate = field(default_factory=KeyframeGate)
    rebase: Rebase = field(default_factory=Rebase)
    pushed: int = 0
    on_slate: bool = False
    slate_index: int = 0
    video_caps: Gst.Caps | None = None  # what the video appsrc was last told, if we changed it

    def _running_time(self) -> int | None:
        clock = self.video.get_clock()
        if clock is None:
            return None
        return max(0, clock.get_time() - self.video.get_base_time())

    def _set_video_caps(self, caps: Gst.Caps | None) -> None:
        if caps is not None and (self.video_caps is None or not caps.is_equal(self.video_caps)):
            self.video.set_property("caps", caps)
            self.video_caps = caps

    def offer(self, video: bool, buffer: Gst.Buffer, pts: int | None, dts: int | None,
              keyframe: bool, caps: Gst.Caps | None = None) -> None:
        """One camera frame (its timestamps and keyframe flag read once for all targets)."""
        if pts is None:
            return
        gate = self.gate
        if not gate.is_open:
            if not gate.admit(video, keyframe):
                return  # readers start at a keyframe
            now = self._running_time()
            if now is None:
                gate.close()
                return  # the media is not playing yet
            if self.on_slate or self.video_caps is not None:
                self._set_video_caps(caps)  # back from the slate: the camera's caps again
            self.on_slate = False
            self.rebase.anchor(dts if dts is not None else pts, now)
        src = self.video if video else self.audio
        mapped = self.rebase.map(pts, dts)
        if src is None or mapped is None:
            return
        src.emit("push-buffer", retimed(buffer, *mapped))
        self.pushed += 1

    def reanchor(self) -> None:
        self.gate.close()
        self.rebase.reset()

    def show_slate(self, slate: Slate) -> None:
        """Push the next slate frame, timed now; the camera resumes at its next keyframe."""
        now = self._running_time()
        if now is None:
            return
        if not self.on_slate:
            self.on_slate = True
            self.reanchor()
            self._set_video_caps(slate.caps)
        frame = Gst.Buffer.new_wrapped(slate.frames[self.slate_index % len(slate.frames)])
        self.slate_index += 1
        frame.pts = frame.dts = now
        self.video.emit("push-buffer", frame)
        self.pushed += 1


class RelayConsumer(Consumer):
    kind = "restream"
    wants_audio = True

    def __init__(self, stream_id: str, fallback: str = "none"):
        super().__init__("restream")
        self.stream_id = stream_id
        self.fallback = fallback
        self._lock = threading.Lock()
        self.targets: list[RelayTarget] = []
        self._video_caps: Gst.Caps | None = None
        self._last_video = time.monotonic()
        self.slate_frames = 0
        self._bridges = {"video": Bridge(), "audio": Bridge()}  # streaming threads, per kind

    def build(self) -> Gst.Bin:
        self.bin = appsink_tap(f"restream-{self.stream_id}", self._on_sample, self._on_event)
        return self.bin

    def _on_event(self, _pad: Gst.Pad, info: Gst.PadProbeInfo, kind: str) -> Gst.PadProbeReturn:
        if kind == "video" and info.get_event().type == _STREAM_START:
            with self._lock:  # the camera reconnected: timestamps start afresh
                self._bridges = {"video": Bridge(), "audio": Bridge()}
                for target in self.targets:
                    target.reanchor()
        return _PROBE_OK

    def _on_sample(self, sink: Gst.Element, kind: str) -> Gst.FlowReturn:
        sample = sink.emit("pull-sample")
        if sample is not None:
            buffer = sample.get_buffer()
            pts, dts = timestamps(buffer)
            decode = dts if dts is not None else pts
            if decode is not None:
                shift = self._bridges[kind].adjust(decode, time.monotonic_ns())
                if shift:
                    pts = pts + shift if pts is not None else None
                    dts = dts + shift if dts is not None else None
            video = kind == "video"
            caps = None
            if video:
                caps = self._video_caps = sample.get_caps()
                self._last_video = time.monotonic()
            keyframe = not video or is_keyframe(buffer)
            with self._lock:
                for target in self.targets:
                    target.offer(video, buffer, pts, dts, keyframe, caps)
        return _FLOW_OK

    def seed_caps(self, caps: Gst.Caps | None) -> None:
        """The camera's last caps, for a relay attached while the camera is down (the slate
        is made to their size)."""
        if caps is not None and self._video_caps is None:
            self._video_caps = caps

    def tick(self, now: float) -> None:
        """GStreamer thread, every producer tick: feed the slate to medias that need it."""
        if self.fallback != "slate":
            return
        slate = SLATES.get(self._video_caps)  # starts the one-off encode early
        if slate is None:
            return
        outage = now - self._last_video >= OUTAGE_S
        with self._lock:
            for target in self.targets:
                if outage or target.on_slate:  # until the camera's keyframe takes over
                    target.show_slate(slate)
                    self.slate_frames += 1

    def add_target(self, target: RelayTarget) -> None:
        with self._lock:
            self.targets.append(target)

    def remove_target(self, target: RelayTarget) -> int:
        """Forget a media; returns how many remain (0: the relay can be detached)."""
        with self._lock:
            if target in self.targets:
                self.targets.remove(target)
            return len(self.targets)

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "medias": len(self.targets),
                "pushed": sum(t.pushed for t in list(self.targets)),
                "slate_frames": self.slate_frames}
