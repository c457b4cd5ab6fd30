"""How a camera's audio goes into a recording: kept as sent, converted, or (never silently)
left out. Plain strings in and out, so the table is read and tested without GStreamer.

Cameras send AAC, G.711 (A-law, µ-law) or Opus (RTMP ones sometimes MP3). MKV carries all of
them as they are. MP4 (`mp4mux`) and MPEG-TS (`mpegtsmux`) carry AAC, MP3 and Opus but not
G.711, so G.711 is converted
to AAC inside the recording session: the audio only (8 kHz mono, a few µs per frame), never
the video, and the restream, live view and MKV recordings still get the camera's own audio.
AAC that arrives as MPEG-2 AAC (what an MPEG-TS camera's ADTS headers say) is the same
bitstream as MPEG-4 AAC-LC; MP4 only takes the latter's label, so it is relabelled. Anything
else is left out with a warning in the log and in the stream's health.
"""

from __future__ import annotations

from dataclasses import dataclass

AAC_BITRATE = 32000  # bit/s for converted G.711 (8 kHz speech): at least as good as the source

_NAMES = {"audio/mpeg": "AAC", "audio/x-opus": "Opus", "audio/x-alaw": "G.711 A-law",
          "audio/x-mulaw": "G.711 µ-law"}
_G711_DECODERS = {"audio/x-alaw": "alawdec", "audio/x-mulaw": "mulawdec"}
_CARRIED = {  # what each container takes as it is (caps name -> parser)
    "mp4": {"audio/mpeg": "aacparse", "audio/x-opus": "opusparse"},
    "ts": {"audio/mpeg": "aacparse", "audio/x-opus": "opusparse"},
    "mkv": {"audio/mpeg": "aacparse", "audio/x-opus": "opusparse", "audio/x-alaw": "identity",
            "audio/x-mulaw": "identity"},
}


@dataclass(frozen=True)
class AudioPlan:
    """`chain`: the elements between the session's audio appsrc and the muxer (None: no
    audio track); `caps_fields`: fields to set on the appsrc's caps; `note`: what to tell
    the operator (None when the audio is kept as sent); `warning`: the note is a loss."""

    chain: str | None
    caps_fields: tuple[tuple[str, int], ...] = ()
    note: str | None = None
    warning: bool = False

    @property
    def recorded(self) -> bool:
        return self.chain is not None


def codec_name(caps_name: str) -> str:
    return _NAMES.get(caps_name, caps_name)


def plan(fmt: str, caps_name: str, mpegversion: int | None = None) -> AudioPlan:
    """How audio with caps `caps_name` (and `mpegversion` for audio/mpeg) goes into `fmt`."""
    carried = _CARRIED.get(fmt, {})
    if caps_name == "audio/mpeg" and mpegversion == 1:  # MP3: every container takes it
        return AudioPlan("mpegaudioparse")
    parser = carried.get(caps_name)
    if parser is not None:
        relabel = (("mpegversion", 4),) if caps_name == "audio/mpeg" and fmt == "mp4" else ()
        return AudioPlan(parser, relabel)
    decoder = _G711_DECODERS.get(caps_name)
    if decoder is not None:
        chain = (f"{decoder} ! audioconvert ! audioresample ! avenc_aac bitrate={AAC_BITRATE}"
                 " ! aacparse")
        return AudioPlan(chain, note=f"{codec_name(caps_name)} audio is recorded as AAC: "
                                     f"{fmt} cannot hold G.711")
    return AudioPlan(None, note=f"{codec_name(caps_name)} audio is not recorded: {fmt} cannot "
                                "hold it", warning=True)
