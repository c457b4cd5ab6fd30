"""A stamped MPEG-TS of a clip for the ffmpeg cameras, written once by FFmpeg's muxer (PyAV).

ffmpeg serves files as they are (`-c copy`), so it cannot stamp frames as it sends them. The
clip is therefore written out once, looped `seconds` long, with every access unit already
stamped with its index in the file (and, as its time, its media time in seconds, not a wall
clock). A reader that sees stamp n got the file's n-th frame; a connection longer than
`seconds` sees the numbers start again. Parameter sets go in-band before every keyframe, as
MPEG-TS needs. Audio: AAC or Opus (FFmpeg's MPEG-TS muxer carries no G.711).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from streamwarden.demo.stamp import stamp_access_unit
from tests.zoo.clip import Clip, load_clip
from tests.zoo.media import _locked, cache_root, ensure_media
from tests.zoo.nal import to_annexb
from tests.zoo.spec import MediaSpec

TS_AUDIO = ("none", "aac", "opus")
TIME_BASE = Fraction(1, 90000)


def _packet(data: bytes, stream, pts_ns: int, dts_ns: int, keyframe: bool) -> av.Packet:
    packet = av.Packet(data)
    packet.stream = stream
    packet.time_base = TIME_BASE
    packet.pts, packet.dts = pts_ns * 9 // 100_000, dts_ns * 9 // 100_000
    packet.is_keyframe = keyframe
    return packet


def _write(clip: Clip, files, out_path: Path, seconds: int) -> int:
    """Mux `seconds` of looped, stamped clip into `out_path`; returns the frame count."""
    loops = max(1, -(-seconds // clip.spec.loop_seconds))
    with av.open(str(files.video[0])) as vin, av.open(str(out_path), "w", format="mpegts") as out:
        vstream = out.add_stream_from_template(vin.streams.video[0])
        vstream.time_base = TIME_BASE
        astream = None
        ain = av.open(str(files.audio)) if files.audio else None
        if ain is not None:
            astream = out.add_stream_from_template(ain.streams.audio[0])
            astream.time_base = TIME_BASE
        events = []
        for loop in range(loops):
            base = loop * clip.loop_ns
            events += [(base + u.dts, 0, base, u) for u in clip.video]
            events += [(base + u.pts, 1, base, u) for u in clip.audio if u.pts < clip.loop_ns]
        events.sort(key=lambda e: (e[0], e[1]))
        sequence = 0
        for _due, track, base, unit in events:
            if track == 1:
                out.mux(_packet(unit.data, astream, base + unit.pts, base + unit.pts, True))
                continue
            data = unit.data
            if unit.keyframe:
                data = to_annexb(list(clip.parameter_sets[unit.part])) + data
            data = stamp_access_unit(clip.spec.codec, data, sequence, (base + unit.pts) / 1e9)
            out.mux(_packet(data, vstream, base + unit.pts, base + unit.dts, unit.keyframe))
            sequence += 1
        if ain is not None:
            ain.close()
    return sequence


def stamped_ts(spec: MediaSpec, seconds: int = 300) -> Path:
    """The stamped, looped MPEG-TS for `spec` (made once, cached beside the clip)."""
    if spec.audio not in TS_AUDIO:
        raise ValueError(f"ffmpeg cameras carry audio {TS_AUDIO}, not {spec.audio!r} "
                         "(FFmpeg's MPEG-TS muxer has no G.711)")
    files = ensure_media(spec)
    folder = cache_root() / spec.key()
    path = folder / f"stamped-{seconds}s.ts"
    with _locked(folder.with_suffix(".lock")):
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            _write(load_clip(spec, files), files, tmp, seconds)
            tmp.rename(path)
    return path
