"""The labelled scene of bench/detect_quality.py: people and cars with known boxes in every frame.

Pictures come from a Debian package's sample data, fetched at run time (`apt-get download
opencv-doc`, unpacked with `dpkg-deb -x` into the cache; nothing installed, nothing
committed): 24 pedestrians cut out of `vtest.avi` (a CCTV clip: boxes where two detectors
agreed, checked by eye; see the research notes of issue #14), the rear of a car
(`licenseplate_motion.jpg`) and an empty street (`leuvenA.jpg`) as the background.

The scene is a series of *passes*. In each pass three objects appear one second apart, each in
its own third of the frame (so none hides another), walk or drive slowly for `VISIBLE_S`
seconds at a constant size and vanish; then the street stays empty for `GAP_S` (longer than
the default `event_gap`, so events of one pass never run into the next). Objects appear
whole (as from a doorway), which makes "first appearance" one exact frame. People are
pasted at heights from 60 to 260 px and cars at 120-400 px wide, in 1280x720, 25 fps.

The clip is rendered once, encoded once by ffmpeg (libx264, 1 s GOP, no B-frames, 2.5 Mbit/s,
like a 720p camera) into the cache with its ground truth (JSON, one box per object per
frame), keyed by everything that shapes it; later runs reuse both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

WIDTH, HEIGHT, FPS, GOP, BITRATE_KBPS = 1280, 720, 25, 25, 2500
PERSON_HEIGHTS = (60, 80, 100, 120, 150, 200, 260)
CAR_WIDTHS = (120, 180, 240, 300, 360, 400)
SLOT_OFFSETS_S = (0.0, 1.0, 2.0)
VISIBLE_S = 6.0
GAP_S = 5.5
SCENE_VERSION = 1  # bump when the rendering changes: the cache key changes with it

# (frame, person box) in vtest.avi (768x576): harvested for issue #14's research
VTEST_PEOPLE = [
    (20, (686, 271, 725, 379)), (20, (439, 233, 481, 315)), (20, (362, 193, 395, 275)),
    (20, (725, 275, 763, 373)), (80, (568, 189, 600, 285)), (80, (372, 180, 402, 259)),
    (140, (384, 186, 414, 265)), (200, (616, 265, 651, 369)), (200, (218, 190, 250, 266)),
    (200, (703, 253, 744, 354)), (260, (530, 246, 568, 341)), (260, (324, 213, 364, 301)),
    (320, (598, 181, 627, 265)), (320, (257, 196, 282, 278)), (320, (304, 168, 334, 250)),
    (380, (562, 268, 610, 374)), (380, (659, 212, 697, 310)), (440, (616, 256, 649, 354)),
    (500, (309, 188, 334, 265)), (560, (641, 304, 672, 411)), (560, (379, 156, 409, 236)),
    (560, (584, 158, 614, 235)), (620, (456, 175, 493, 254)), (680, (272, 158, 302, 238)),
]
MARGIN = 0.08  # of the person's box, cut with them from their own street
CAR_BOX = (0.0, 0.02, 1.0, 1.0)  # the car fills licenseplate_motion.jpg (fractions)


def cache_dir() -> Path:
    base = os.environ.get("STREAMWARDEN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "streamwarden")
    return Path(base) / "detect-quality"


# ---- pictures from a package ----------------------------------------------------------------


def opencv_samples(cache: Path) -> Path:
    """opencv-doc's example data, unpacked from the .deb once (apt-get download, no install)."""
    target = cache / "opencv-doc"
    data = target / "usr/share/doc/opencv-doc/examples/data"
    if (data / "vtest.avi").is_file():
        return data
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        result = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp,
                                capture_output=True, text=True, timeout=600)
        debs = sorted(Path(tmp).glob("opencv-doc_*.deb"))
        if result.returncode != 0 or not debs:
            raise RuntimeError("apt-get download opencv-doc failed (run apt-get update "
                               f"first?): {result.stderr.strip()[-500:]}")
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(target)], check=True)
    return data


@dataclass(frozen=True)
class Sprite:
    label: str
    image: np.ndarray  # BGR, the object with a margin of its own background
    box: tuple[float, float, float, float]  # the object inside `image`, pixels


def people(data: Path) -> list[Sprite]:
    import cv2

    video = cv2.VideoCapture(str(data / "vtest.avi"))
    out = []
    for index, (x0, y0, x1, y1) in VTEST_PEOPLE:
        video.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = video.read()
        if not ok:
            raise RuntimeError(f"vtest.avi: frame {index} unreadable")
        mx, my = round((x1 - x0) * MARGIN), round((y1 - y0) * MARGIN)
        cx0, cy0 = max(0, x0 - mx), max(0, y0 - my)
        cut = frame[cy0:min(frame.shape[0], y1 + my), cx0:min(frame.shape[1], x1 + mx)].copy()
        out.append(Sprite("person", cut, (x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0)))
    video.release()
    return out


def car(data: Path) -> Sprite:
    import cv2

    image = cv2.imread(str(data / "licenseplate_motion.jpg"))
    h, w = image.shape[:2]
    return Sprite("car", image, (CAR_BOX[0] * w, CAR_BOX[1] * h, CAR_BOX[2] * w,
                                 CAR_BOX[3] * h))


def background(data: Path) -> np.ndarray:
    import cv2

    street = cv2.imread(str(data / "leuvenA.jpg"))
    scaled = cv2.resize(street, (WIDTH, round(street.shape[0] * WIDTH / street.shape[1])),
                        interpolation=cv2.INTER_CUBIC)
    top = (scaled.shape[0] - HEIGHT) // 2
    return scaled[top:top + HEIGHT].copy()


# ---- the plan (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Appearance:
    """One object's appearance: `frames` frames from `start`, a constant size, a straight path."""

    id: int
    label: str
    sprite: int  # index into people() (cars: 0)
    scale: float  # sprite pixels -> frame pixels
    origin: tuple[float, float]  # where the sprite's top-left is pasted at `start`
    step: float  # pixels per frame along x (sign: direction)
    start: int
    frames: int

    def paste_at(self, frame: int) -> tuple[int, int]:
        return (round(self.origin[0] + self.step * (frame - self.start)),
                round(self.origin[1]))

    def box(self, frame: int, sprite_box: tuple[float, float, float, float]
            ) -> tuple[float, float, float, float]:
        x, y = self.paste_at(frame)
        x0, y0, x1, y1 = sprite_box
        k = self.scale
        return (x + x0 * k, y + y0 * k, x + x1 * k, y + y1 * k)


def object_list(person_count: int) -> list[tuple[str, float, int]]:
    """(label, size, sprite) in play order: every person height three times, a car every ~4.

    Person size is the box height, car size its width; sprites cycle through the 24 people.
    """
    order = (60, 150, 260, 80, 200, 100, 120)
    persons = [("person", float(order[i % len(order)]), i % person_count) for i in range(21)]
    cars = [("car", float(w), 0) for w in CAR_WIDTHS]
    out: list[tuple[str, float, int]] = []
    for i, item in enumerate(persons):
        out.append(item)
        if i % 4 == 2 and cars:
            out.append(cars.pop(0))
    return out + cars


def plan(sprite_boxes: dict[tuple[str, int], tuple[float, float, float, float]]
         ) -> tuple[list[Appearance], int]:
    """Every appearance and the clip's length in frames; three slots (columns) per pass."""
    objects = object_list(sum(1 for label, _ in sprite_boxes if label == "person"))
    column = WIDTH / len(SLOT_OFFSETS_S)
    visible = round(VISIBLE_S * FPS)
    pass_frames = round((SLOT_OFFSETS_S[-1] + VISIBLE_S + GAP_S) * FPS)
    out = []
    for i, (label, size, sprite) in enumerate(objects):
        pass_index, slot = divmod(i, len(SLOT_OFFSETS_S))
        x0, y0, x1, y1 = sprite_boxes[(label, sprite)]
        scale = size / ((y1 - y0) if label == "person" else (x1 - x0))
        box_w, box_h = (x1 - x0) * scale, (y1 - y0) * scale
        travel = min(0.6 * (column - box_w), 0.5 * box_h * VISIBLE_S)  # a slow walk
        rightwards = i % 2 == 0
        left = slot * column + (column - box_w - travel) / 2
        start_x = left if rightwards else left + travel
        feet = min(HEIGHT - 10, 430 + 1.1 * box_h)
        origin = (start_x - x0 * scale, feet - box_h - y0 * scale)
        step = travel / visible * (1 if rightwards else -1)
        start = pass_index * pass_frames + round(SLOT_OFFSETS_S[slot] * FPS)
        out.append(Appearance(i, label, sprite, scale, origin, step, start, visible))
    passes = -(-len(objects) // len(SLOT_OFFSETS_S))
    return out, passes * pass_frames


# ---- rendering and encoding ------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    clip: Path  # H.264 Annex B, WIDTH x HEIGHT at FPS
    truth: Path  # JSON: size, fps, frames, objects with one box per frame
    frames: int


def _paste(frame: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    h, w = image.shape[:2]
    fx0, fy0 = max(0, x), max(0, y)
    fx1, fy1 = min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if fx0 < fx1 and fy0 < fy1:
        frame[fy0:fy1, fx0:fx1] = image[fy0 - y:fy1 - y, fx0 - x:fx1 - x]


def build(cache: Path | None = None) -> Scene:
    """The scene's clip and truth, from the cache or rendered and encoded now (once)."""
    import cv2

    cache = cache or cache_dir()
    data = opencv_samples(cache)
    sprites = {("person", i): s for i, s in enumerate(people(data))}
    sprites[("car", 0)] = car(data)
    appearances, frames = plan({k: s.box for k, s in sprites.items()})
    key = hashlib.sha1(json.dumps([SCENE_VERSION, WIDTH, HEIGHT, FPS, GOP, BITRATE_KBPS,
                                   [asdict(a) for a in appearances]]).encode()).hexdigest()[:12]
    folder = cache / f"scene-{key}"
    scene = Scene(folder / "scene.h264", folder / "truth.json", frames)
    if scene.clip.is_file() and scene.truth.is_file():
        return scene
    folder.mkdir(parents=True, exist_ok=True)
    scaled = {a.id: cv2.resize(sprites[(a.label, a.sprite)].image, None, fx=a.scale,
                               fy=a.scale, interpolation=cv2.INTER_AREA if a.scale < 1
                               else cv2.INTER_LINEAR) for a in appearances}
    street = background(data)
    _encode(scene.clip, (_render(street, appearances, scaled, n) for n in range(frames)))
    truth = {"width": WIDTH, "height": HEIGHT, "fps": FPS, "frames": frames, "objects": [
        {"id": a.id, "label": a.label, "start": a.start, "frames": a.frames,
         "boxes": [[round(v, 2) for v in a.box(n, sprites[(a.label, a.sprite)].box)]
                   for n in range(a.start, a.start + a.frames)]} for a in appearances]}
    partial = scene.truth.with_suffix(".partial")
    partial.write_text(json.dumps(truth))
    partial.replace(scene.truth)
    return scene


def _render(street: np.ndarray, appearances: list[Appearance], scaled: dict[int, np.ndarray],
            n: int) -> np.ndarray:
    frame = street.copy()
    for a in appearances:
        if a.start <= n < a.start + a.frames:
            _paste(frame, scaled[a.id], *a.paste_at(n))
    return frame


def _encode(target: Path, frames) -> None:
    """Raw BGR frames into ffmpeg's libx264, written atomically as an Annex B stream."""
    partial = target.with_suffix(".partial")
    args = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24",
            "-s", f"{WIDTH}x{HEIGHT}", "-r", str(FPS), "-i", "-", "-c:v", "libx264",
            "-preset", "veryfast", "-tune", "zerolatency", "-b:v", f"{BITRATE_KBPS}k",
            "-maxrate", f"{BITRATE_KBPS}k", "-bufsize", f"{2 * BITRATE_KBPS}k",
            "-x264-params", f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=0",
            "-pix_fmt", "yuv420p", "-threads", "1", "-f", "h264", str(partial)]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        try:
            for frame in frames:
                proc.stdin.write(frame.tobytes())
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
        error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"ffmpeg failed encoding the scene: {error.strip()[-500:]}")
    partial.replace(target)


if __name__ == "__main__":
    built = build()
    print(f"{built.clip} ({built.frames} frames)\n{built.truth}")
