"""Where the built-in model lives and how the set-up installs it from a registry package.

No model hub is reachable at run time, so the default detector must arrive with a package.
MediaPipe's 0.10.14 wheel (Apache-2.0) carries `pose_detection.tflite`; the set-up downloads
that wheel with pip (any platform's wheel holds the same file, so the x86-64 one is fetched
on every machine) and extracts the one file next to this module. Nothing else of MediaPipe is
installed.

    python -m streamwarden.inference.models          # install if missing, print the path
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "models"
BUILTIN_MODEL = MODEL_DIR / "pose_detection.tflite"
WHEEL = "mediapipe==0.10.14"
MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"


def install_builtin_model(target: Path = BUILTIN_MODEL) -> Path:
    """Fetch the MediaPipe wheel with pip and extract the person detector (idempotent)."""
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64",
             "--python-version", "3.11", "-d", tmp, WHEEL],
            check=True)
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


if __name__ == "__main__":
    print(install_builtin_model())
