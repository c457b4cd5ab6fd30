"""What `streamwarden demo` shows: two synthetic cameras a newcomer can look at right away.

- `demo`: the moving test pattern with its burnt-in clock, recorded continuously;
- `person`: a photograph of a person (scikit-image's public-domain astronaut picture, found
  on disk without importing scikit-image), recorded, with detection on, so the first minute
  already has live video, a recording on the timeline and person events with boxes.

No camera, GPU or network: clips are encoded once and cached (demo/clip.py), the built-in
detector runs on the CPU. Plain data here; the service builds the cameras from it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from streamwarden.config.model import Config, RecordingSection, StreamConfig

DEMO_CAMERA_PORT = 8555
DEMO_SEGMENT_S = 30.0  # short segments: complete recordings within the first minute


@dataclass(frozen=True)
class DemoCamera:
    """One mount of the demo's RTSP server and the stream that reads it."""

    stream_id: str
    path: str
    image: str | None = None  # a still picture instead of the test pattern
    size: tuple[int, int] = (640, 360)
    inference: bool = False


def person_picture() -> Path | None:
    """scikit-image's astronaut.png where scikit-image is installed (`pip install
    scikit-image`; the test extras have it), else None."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        return None
    picture = Path(spec.origin).parent / "data" / "astronaut.png"
    return picture if picture.is_file() else None


def demo_cameras() -> list[DemoCamera]:
    cameras = [DemoCamera("demo", "/demo")]
    picture = person_picture()
    if picture is not None:
        cameras.append(DemoCamera("person", "/person", image=str(picture), size=(640, 640),
                                  inference=True))
    return cameras


def demo_streams(cameras: list[DemoCamera], url: str, config: Config) -> list[StreamConfig]:
    """The demo's streams, minus any id the config file already defines."""
    taken = {stream.id for stream in config.streams}
    return [StreamConfig(id=c.stream_id, uri=f"{url}{c.path}", enable_recording=True,
                         enable_inference=c.inference)
            for c in cameras if c.stream_id not in taken]


def demo_config() -> Config:
    """The demo's settings when no config file is given."""
    return Config(recording=RecordingSection(segment_duration=DEMO_SEGMENT_S))
