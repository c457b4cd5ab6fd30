"""Micro-benchmark: what a Python pad probe on every RTP packet costs, and how it splits.

    .venv/bin/python bench/rtp_probe.py                  # the ingest bench's 720p clip
    .venv/bin/python bench/rtp_probe.py --pattern snow --bitrate 4000  # more packets a frame

Real RTP packets (a pre-encoded H.264 clip through `h264parse ! rtph264pay mtu=1400`, as a
camera sends them, one buffer each as rtspsrc's jitter buffer pushes them; no encoding) flow
as fast as they can into `fakesink`, once per variant of the probe that
`ingest.decode_order.RtpTimes` puts on rtspsrc's pad. Each run's process CPU
time over the packets it passed gives µs per packet; the `none` run (no probe) is the
pipeline's own cost, subtracted from the others. Variants:

- `none`: no probe; `empty`: a probe that only returns OK (PyGObject's dispatch: the GIL,
  wrapping the pad and the info); `empty-weak`: the same through `gst.weak.weak_method`;
  `empty-list`: with BUFFER_LIST in its mask; `empty-2`: plus a second probe for lists;
  `empty-type`: reading `info.type`;
- `old`: the probe `RtpTimes` had before (weak, BUFFER|LIST, `info.type`, `RtpClock.pts`
  per packet); `times`: `RtpTimes` as it is now; `times-memo`: the same asking the
  clock once per RTP timestamp (the header bytes compared, the answer reused);
- `memo-*`: through `weak_method`, the RTP time read per packet with `extract_dup`,
  `Buffer.map` or GstRtp's `RTPBuffer`, `RtpClock.pts` called when it changes.

It prints packets per frame too, the ratio by which a probe after the depayloader (one call
per frame) would cut the calls.
"""

from __future__ import annotations

import argparse
import resource
import sys
from collections.abc import Callable

import gi

gi.require_version("GstRtp", "1.0")
from gi.repository import GstRtp  # noqa: E402

from streamwarden.demo.clip import ClipSpec, ensure_clip  # noqa: E402
from streamwarden.gst.init import Gst  # noqa: E402
from streamwarden.gst.weak import weak_method  # noqa: E402
from streamwarden.ingest.decode_order import RtpTimes  # noqa: E402
from streamwarden.media.timeline import RtpClock  # noqa: E402

_OK = Gst.PadProbeReturn.OK
_NONE = Gst.CLOCK_TIME_NONE
LOOPS = 40  # passes of the clip per run: enough packets for a steady figure
Probe = Callable[[Gst.Pad, Gst.PadProbeInfo], Gst.PadProbeReturn]


class Memo:
    """RtpClock.pts once per RTP time; `read` gets the packet's RTP time."""

    def __init__(self, read: Callable[[Gst.Buffer], int | None]):
        self.clock = RtpClock(90000)
        self.read = read
        self.last_rtp: int | None = None
        self.last_ref = -1
        self.last_pts = 0

    def probe(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        packet = info.get_buffer()
        reference = packet.pts
        rtp = self.read(packet)
        if rtp is None or reference == _NONE:
            return _OK
        if rtp != self.last_rtp or reference != self.last_ref:
            self.last_rtp, self.last_ref = rtp, reference
            self.last_pts = self.clock.pts(rtp, reference)
        packet.pts = self.last_pts
        return _OK


def read_extract(packet: Gst.Buffer) -> int | None:
    return int.from_bytes(packet.extract_dup(4, 4), "big") if packet.get_size() >= 8 else None


def read_map(packet: Gst.Buffer) -> int | None:
    ok, info = packet.map(Gst.MapFlags.READ)
    if not ok:
        return None
    try:
        data = info.data
        return int.from_bytes(data[4:8], "big") if len(data) >= 8 else None
    finally:
        packet.unmap(info)


def read_rtpbuffer(packet: Gst.Buffer) -> int | None:
    ok, rtp = GstRtp.RTPBuffer.map(packet, Gst.MapFlags.READ)
    if not ok:
        return None
    try:
        return rtp.get_timestamp()
    finally:
        rtp.unmap()


def _empty(_pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    return _OK


class OldTimes:
    """`RtpTimes` as it was before the per-packet work was cut (for the comparison)."""

    def __init__(self, pad: Gst.Pad, clock_rate: int):
        self.clock = RtpClock(clock_rate)
        mask = Gst.PadProbeType.BUFFER | Gst.PadProbeType.BUFFER_LIST
        pad.add_probe(mask, weak_method(self._on_packets, _OK))

    def _retime(self, packet: Gst.Buffer) -> None:
        reference = packet.pts
        if reference != _NONE and packet.get_size() >= 8:
            packet.pts = self.clock.pts(int.from_bytes(packet.extract_dup(4, 4), "big"), reference)

    def _on_packets(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        if info.type & Gst.PadProbeType.BUFFER:
            self._retime(info.get_buffer())
        else:
            packets = info.get_buffer_list()
            for index in range(packets.length()):
                self._retime(packets.get(index))
        return _OK


class BytesMemo:
    """`RtpTimes`' probe asking `RtpClock.pts` once per RTP timestamp (the packets of a frame
    share it: the four header bytes compared as they are), reusing its answer for the
    packets after: what that memo saves."""

    def __init__(self, pad: Gst.Pad, clock_rate: int):
        self.clock = RtpClock(clock_rate)
        self.head: bytes | None = None
        self.pts = 0
        pad.add_probe(Gst.PadProbeType.BUFFER, self.probe)

    def probe(self, _pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        packet = info.get_buffer()
        reference = packet.pts
        if reference == _NONE:
            return _OK
        head = packet.extract_dup(4, 4)
        if head != self.head:
            if len(head) != 4:
                return _OK
            self.head = head
            self.pts = self.clock.pts(int.from_bytes(head, "big"), reference)
        packet.pts = self.pts
        return _OK


def _typed(_pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    if info.type & Gst.PadProbeType.BUFFER:
        return _OK
    return _OK


class _Owner:
    def probe(self, _pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        return _OK


def _pipeline(clip: str) -> tuple[Gst.Pipeline, Gst.Pad]:
    pipeline = Gst.parse_launch(
        f"multifilesrc location={clip} loop=true num-buffers={LOOPS} ! h264parse ! "
        "video/x-h264,stream-format=byte-stream,alignment=au ! identity name=frames ! "
        "rtph264pay mtu=1400 config-interval=-1 ! identity name=packets ! "
        "fakesink sync=false enable-last-sample=false")
    # the payloader pushes a fragmented frame as one buffer list; `identity` (no list
    # function) passes it on packet by packet, as rtspsrc's jitter buffer does
    return pipeline, pipeline.get_by_name("packets").get_static_pad("src")


def _play(pipeline: Gst.Pipeline) -> None:
    pipeline.set_state(Gst.State.PLAYING)
    message = pipeline.get_bus().timed_pop_filtered(
        120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if message is None or message.type != Gst.MessageType.EOS:
        raise SystemExit(f"no EOS ({message.parse_error() if message else 'timeout'})")


def count(clip: str) -> tuple[int, int]:
    """(packets, frames) in one pass of the clip."""
    pipeline, pad = _pipeline(clip)
    counts = [0, 0]

    def packet(_pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        counts[0] += 1
        return _OK

    def frame(_pad: Gst.Pad, _info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        counts[1] += 1
        return _OK

    pad.add_probe(Gst.PadProbeType.BUFFER, packet)
    frames = pipeline.get_by_name("frames").get_static_pad("src")
    frames.add_probe(Gst.PadProbeType.BUFFER, frame)
    _play(pipeline)
    return counts[0], counts[1]


READERS = {"memo-extract": read_extract, "memo-map": read_map, "memo-rtpbuffer": read_rtpbuffer}
OWNERS = {"old": OldTimes, "times": RtpTimes, "times-memo": BytesMemo}


def attach(variant: str, pad: Gst.Pad) -> list[object]:
    """Put this variant's probe(s) on `pad`; what must stay alive while it runs."""
    buffers, lists = Gst.PadProbeType.BUFFER, Gst.PadProbeType.BUFFER_LIST
    plain = {"empty": [(buffers, _empty)], "empty-list": [(buffers | lists, _empty)],
             "empty-2": [(buffers, _empty), (lists, _empty)], "empty-type": [(buffers, _typed)]}
    if variant in plain:
        for mask, probe in plain[variant]:
            pad.add_probe(mask, probe)
        return []
    if variant in OWNERS:
        return [OWNERS[variant](pad, 90000)]
    owner: _Owner | Memo
    if variant == "empty-weak":
        owner = _Owner()
    elif variant in READERS:
        owner = Memo(READERS[variant])
    else:
        raise SystemExit(f"unknown variant {variant}")
    pad.add_probe(buffers, weak_method(owner.probe, _OK))
    return [owner]


def run(clip: str, variant: str) -> float:
    """CPU seconds for one pass of the clip with this probe."""
    pipeline, pad = _pipeline(clip)
    keep = [] if variant == "none" else attach(variant, pad)
    before = _cpu()
    _play(pipeline)
    del keep
    return _cpu() - before


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", help="an H.264 byte-stream file (default: the ingest "
                        "bench's 1280x720 25 fps clip, encoded once and cached)")
    parser.add_argument("--bitrate", type=int, default=ClipSpec.bitrate_kbps,
                        help="kbps of the default clip")
    parser.add_argument("--pattern", default=ClipSpec.pattern,
                        help="videotestsrc pattern of the default clip ('snow': noise, which "
                        "takes all the bitrate it is given)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--variants", default="none,empty,empty-weak,empty-list,empty-2,"
                        "empty-type,old,times,times-memo,memo-extract,memo-map,memo-rtpbuffer")
    args = parser.parse_args(argv)
    variants = args.variants.split(",")
    clip = args.clip or str(ensure_clip(ClipSpec(
        width=1280, height=720, seconds=4, gop=25, bitrate_kbps=args.bitrate,
        pattern=args.pattern))[0])
    best: dict[str, float] = {}
    packets, frames = count(clip)
    for _ in range(args.repeat):
        for variant in variants:
            spent = run(clip, variant)
            best[variant] = min(best.get(variant, spent), spent)
    base = best.get("none", 0.0)
    print(f"{packets} packets, {frames} frames ({packets / max(frames, 1):.1f} packets/frame)")
    for variant in variants:
        extra = (best[variant] - base) / max(packets, 1) * 1e6
        print(f"{variant:16} {best[variant]:7.3f} s  +{extra:6.2f} µs/packet over none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
