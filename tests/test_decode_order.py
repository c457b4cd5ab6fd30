"""`RtpTimes` on a real pad: each packet gets exactly the time `RtpClock` gives it.

The probe is cut to the bone for speed (its own bound method, a probe each for buffers and
buffer lists, no `info.type` read); these tests push RTP packets of a B-frame camera through
`appsrc ! appsink` with it on appsrc's pad, single and as lists, and compare every time that
comes out with a clock fed every packet.
"""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from streamwarden.gst.init import Gst
from streamwarden.ingest.decode_order import RtpTimes
from streamwarden.media.timeline import RtpClock

MS = 1_000_000
FRAME_TICKS = 3600  # 40 ms at 90 kHz


def packet(rtp_time: int | None, pts: int | None, size: int = 200) -> Gst.Buffer:
    """An RTP packet (version 2, payload type 96) with this timestamp; None: too short to
    hold one."""
    if rtp_time is None:
        data = b"\x80\x60\x00"
    else:
        data = b"\x80\x60\x00\x01" + rtp_time.to_bytes(4, "big") + b"\x00\x00\x00\x01"
        data += bytes(size - len(data))
    buffer = Gst.Buffer.new_wrapped(data)
    buffer.pts = Gst.CLOCK_TIME_NONE if pts is None else pts
    return buffer


def camera_packets(seed: int) -> list[tuple[int, int, int]]:
    """(rtp_time, jitter-buffer pts, packets in the frame) for a B-frame camera: frames sent
    in decode order (I P B B ...), 1 to 40 packets each, the reference jittered by a few ms,
    the RTP clock wrapping, and one jump of the camera's clock (5 s back)."""
    rng = random.Random(seed)
    order = [0, 3, 1, 2]  # a P-frame sent before the two B-frames it follows in time
    frames = []
    start = (1 << 32) - 40 * FRAME_TICKS  # wraps after 40 frames
    for group in range(30):
        for slot in order:
            index = group * 4 + slot
            shift = -5 * 90_000 if group >= 20 else 0
            rtp = (start + index * FRAME_TICKS + shift) & 0xFFFFFFFF
            reference = 1_000 * MS + index * 40 * MS + rng.randint(-3, 3) * MS
            frames.append((rtp, reference, rng.randint(1, 40)))
    return frames


class _Pipeline:
    """appsrc ! appsink, RtpTimes on appsrc's pad; `run` pushes and pulls everything."""

    def __init__(self) -> None:
        self.pipeline = Gst.parse_launch(
            "appsrc name=src format=time caps=application/x-rtp,media=video,"
            "clock-rate=90000,encoding-name=H264,payload=96 ! "
            "appsink name=sink sync=false emit-signals=false max-buffers=0")
        self.src = self.pipeline.get_by_name("src")
        self.sink = self.pipeline.get_by_name("sink")
        self.times = RtpTimes(self.src.get_static_pad("src"), 90000)

    def run(self, pushes: list[Gst.Buffer | list[Gst.Buffer]]) -> list[int | None]:
        self.pipeline.set_state(Gst.State.PLAYING)
        try:
            count = 0
            for item in pushes:
                if isinstance(item, list):
                    packets = Gst.BufferList.new()
                    for buffer in item:
                        packets.insert(-1, buffer)
                    self.src.push_buffer_list(packets)
                    count += len(item)
                else:
                    self.src.push_buffer(item)
                    count += 1
            self.src.end_of_stream()
            out = []
            for _ in range(count):
                sample = self.sink.try_pull_sample(5 * Gst.SECOND)
                assert sample is not None, f"only {len(out)} of {count} packets came out"
                pts = sample.get_buffer().pts
                out.append(None if pts == Gst.CLOCK_TIME_NONE else pts)
            return out
        finally:
            self.pipeline.set_state(Gst.State.NULL)


def expected(packets: list[tuple[int | None, int | None]]) -> list[int | None]:
    """What a clock asked for every packet gives; packets without an RTP time or a pts keep
    theirs."""
    clock = RtpClock(90000)
    return [pts if rtp is None or pts is None else clock.pts(rtp, pts) for rtp, pts in packets]


@pytest.mark.parametrize("as_lists", [False, True], ids=["buffers", "lists"])
def test_every_packet_gets_the_clock_time_of_its_rtp_time(as_lists):
    frames = camera_packets(seed=12)
    described: list[tuple[int | None, int | None]] = []
    pushes: list[Gst.Buffer | list[Gst.Buffer]] = []
    for number, (rtp, reference, count) in enumerate(frames):
        frame = [(rtp, reference)] * count
        if number == 7:  # a packet the jitter buffer gave no time, one too short for RTP
            frame += [(rtp, None), (None, reference)]
        described += frame
        built = [packet(r, p) for r, p in frame]
        pushes += [built] if as_lists else built
    pipeline = _Pipeline()
    out = pipeline.run(pushes)
    want = expected(described)
    assert out == want
    jumps = pipeline.times.take_jumps()
    assert len(jumps) == 1 and abs(jumps[0] + 5_000 * MS) < 50 * MS
    assert pipeline.times.take_jumps() == []
    # the probe really retimed: B-frames keep the camera's exact 40 ms steps
    video = sorted({t for t, (r, p) in zip(out, described, strict=True)
                    if r is not None and p is not None})
    steps = {b - a for a, b in pairwise(video[:60])}
    assert all(abs(step - 40 * MS) < 10_000 for step in steps), steps
