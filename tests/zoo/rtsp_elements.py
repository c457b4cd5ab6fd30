"""The RTSP camera's media pipeline, element by element: appsrc per track, a payloader per
track, and around the payloader the faults that live at the RTP packet level.

Built in code rather than with gst-launch syntax because a payloader with a fault after it
must be a bin named `payN` with a ghost source pad: GstRtspServer finds its streams by that
name and links its own transport after that pad.
"""

from __future__ import annotations

import itertools

from streamwarden.gst.init import Gst
from tests.zoo.clip import Clip
from tests.zoo.faults import headroom_seconds, wrap_offset
from tests.zoo.spec import RtspBehaviour

_AUDIO_PAY = {"aac": ("rtpmp4gpay", 97), "pcma": ("rtppcmapay", 8),
              "pcmu": ("rtppcmupay", 0), "opus": ("rtpopuspay", 98)}


def video_caps(clip: Clip, mode: str) -> str:
    """Caps for the video appsrc: Annex B, or length-prefixed with codec_data (SDP only)."""
    codec = clip.spec.codec
    if mode == "sdp":
        form = "avc" if codec == "h264" else "hvc1"
        return (f"video/x-{codec},stream-format={form},alignment=au,"
                f"codec_data=(buffer){clip.codec_data[0].hex()}")
    return f"video/x-{codec},stream-format=byte-stream,alignment=au"


def audio_caps(clip: Clip) -> str:
    info = clip.audio_info
    base = f"rate={info.rate},channels={info.channels}"
    if info.codec == "aac":
        return (f"audio/mpeg,mpegversion=4,stream-format=raw,{base},"
                f"codec_data=(buffer){info.extradata.hex()}")
    if info.codec == "opus":
        return f"audio/x-opus,channel-mapping-family=0,{base}"
    return f"audio/x-{'alaw' if info.codec == 'pcma' else 'mulaw'},{base}"


def _make(factory: str, name: str | None = None, **props) -> Gst.Element:
    element = Gst.ElementFactory.make(factory, name)
    if element is None:
        raise RuntimeError(f"GStreamer element {factory} is missing")
    for key, value in props.items():
        element.set_property(key.replace("_", "-"), value)
    return element


def payloader(name: str, factory: str, pt: int, clock_rate: int, encoding: str,
              behaviour: RtspBehaviour, video: bool) -> Gst.Element:
    """`factory` configured with the behaviour's RTP faults; a bin when packets are altered."""
    props = {"pt": pt}
    if video:
        props["config_interval"] = 0  # parameter sets are placed by the feeder, per mode
    if behaviour.rtp_wrap_after is not None:
        props["timestamp_offset"] = wrap_offset(
            behaviour.rtp_wrap_after + headroom_seconds(behaviour), clock_rate)
    pay = _make(factory, **props)
    tail: list[Gst.Element] = []
    if behaviour.loss:
        tail.append(_make("identity", drop_probability=behaviour.loss))
    if video and behaviour.parameter_sets == "inband":
        # Replace the payloader's caps, so the SDP carries no sprop-parameter-sets/vps/sps/pps.
        caps = Gst.Caps.from_string(
            f"application/x-rtp,media=video,clock-rate={clock_rate},"
            f"encoding-name={encoding},payload={pt},packetization-mode=(string)1")
        tail.append(_make("capssetter", caps=caps, replace=True, join=False))
    if not tail:
        pay.set_name(name)
        return pay
    bin_ = Gst.Bin.new(name)
    chain = [pay, *tail]
    for element in chain:
        bin_.add(element)
    for up, down in itertools.pairwise(chain):
        up.link(down)
    bin_.add_pad(Gst.GhostPad.new("sink", pay.get_static_pad("sink")))
    bin_.add_pad(Gst.GhostPad.new("src", chain[-1].get_static_pad("src")))
    return bin_


def media_bin(clip: Clip, behaviour: RtspBehaviour) -> Gst.Bin:
    """appsrc `vsrc` ! pay0, and appsrc `asrc` ! pay1 when the clip has audio."""
    top = Gst.Bin.new(None)
    codec = clip.spec.codec
    vsrc = _make("appsrc", "vsrc", is_live=True, format=Gst.Format.TIME,
                 caps=Gst.Caps.from_string(video_caps(clip, behaviour.parameter_sets)))
    vpay = payloader("pay0", f"rtp{codec}pay", 96, 90000, codec.upper(), behaviour, True)
    tracks = [(vsrc, vpay)]
    if clip.audio_info is not None:
        factory, pt = _AUDIO_PAY[clip.audio_info.codec]
        asrc = _make("appsrc", "asrc", is_live=True, format=Gst.Format.TIME,
                     caps=Gst.Caps.from_string(audio_caps(clip)))
        rate = clip.audio_info.rate if clip.audio_info.codec != "opus" else 48000
        tracks.append((asrc, payloader("pay1", factory, pt, rate, "", behaviour, False)))
    for src, pay in tracks:
        top.add(src)
        top.add(pay)
        if not src.link(pay):
            raise RuntimeError(f"cannot link {src.get_name()} to {pay.get_name()}")
    return top
