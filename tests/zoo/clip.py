"""A zoo clip in memory: video access units and audio frames with their PTS and DTS.

Read with PyAV (FFmpeg's demuxers) from the files ffmpeg encoded, so B-frame streams keep
their real decode order and composition offsets. Video units are Annex B with no parameter
sets; each unit knows the parameter sets of its part, so a camera decides where they travel.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from tests.zoo.media import MediaFiles, ensure_media
from tests.zoo.nal import is_parameter_set, parameter_sets, split_length_prefixed, to_annexb
from tests.zoo.spec import MediaSpec

NS = 1_000_000_000


@dataclass(frozen=True)
class Unit:
    """One video access unit or audio frame; times in ns from the clip's first DTS."""

    data: bytes
    pts: int
    dts: int
    duration: int
    keyframe: bool
    part: int = 0  # which resolution part (index into Clip.parameter_sets)


@dataclass(frozen=True)
class AudioInfo:
    codec: str  # aac, pcma, pcmu, opus
    rate: int
    channels: int
    extradata: bytes


@dataclass(frozen=True)
class Clip:
    spec: MediaSpec
    video: tuple[Unit, ...]
    parameter_sets: tuple[tuple[bytes, ...], ...]  # per part
    codec_data: tuple[bytes, ...]  # avcC/hvcC per part
    audio: tuple[Unit, ...]
    audio_info: AudioInfo | None
    loop_ns: int


def _ns(value: int | None, time_base: Fraction) -> int:
    return int((value or 0) * time_base * NS)


def _read_part(spec: MediaSpec, path: Path, part: int, offset: int
               ) -> tuple[list[Unit], list[bytes], bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        extradata = bytes(stream.codec_context.extradata)
        sets, length_size = parameter_sets(spec.codec, extradata)
        sets = [n for n in sets if is_parameter_set(spec.codec, n)]  # hvcC may hold SEI too
        packets = [p for p in container.demux(stream) if p.size]
        first_dts = min(p.dts for p in packets)
        units = []
        for packet in packets:
            nals = [n for n in split_length_prefixed(bytes(packet), length_size)
                    if not is_parameter_set(spec.codec, n)]
            units.append(Unit(
                data=to_annexb(nals),
                pts=offset + _ns(packet.pts - first_dts, packet.time_base),
                dts=offset + _ns(packet.dts - first_dts, packet.time_base),
                duration=_ns(packet.duration, packet.time_base) or NS // spec.fps,
                keyframe=packet.is_keyframe, part=part))
    return units, sets, extradata


def _read_audio(path: Path, codec: str) -> tuple[list[Unit], AudioInfo]:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        info = AudioInfo(codec, ctx.sample_rate, ctx.channels if hasattr(ctx, "channels")
                         else ctx.layout.nb_channels, bytes(ctx.extradata or b""))
        units = [Unit(bytes(p), _ns(p.pts, p.time_base), _ns(p.pts, p.time_base),
                      _ns(p.duration, p.time_base), True)
                 for p in container.demux(stream) if p.size]
    if codec in ("pcma", "pcmu"):
        units = _rechunk_g711(units, info.rate)
    return units, info


def _rechunk_g711(units: list[Unit], rate: int, ms: int = 20) -> list[Unit]:
    """G.711 as cameras send it: 20 ms frames (one byte per sample)."""
    data = b"".join(u.data for u in units)
    size = rate * ms // 1000
    step = ms * 1_000_000
    return [Unit(data[i:i + size], n * step, n * step, step, True)
            for n, i in enumerate(range(0, len(data) - size + 1, size))]


def load_clip(spec: MediaSpec, files: MediaFiles | None = None) -> Clip:
    """Encode (once, cached) and load the clip's units into memory."""
    files = files or ensure_media(spec)
    video: list[Unit] = []
    sets, codec_data = [], []
    for part, path in enumerate(files.video):
        units, part_sets, extradata = _read_part(spec, path, part, part * spec.seconds * NS)
        video += units
        sets.append(tuple(part_sets))
        codec_data.append(extradata)
    if not video[0].keyframe:
        raise RuntimeError(f"{files.video[0]} does not start with a keyframe")
    audio, info = _read_audio(files.audio, spec.audio) if files.audio else ([], None)
    return Clip(spec, tuple(video), tuple(sets), tuple(codec_data), tuple(audio), info,
                spec.loop_seconds * NS)
