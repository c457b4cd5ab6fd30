"""Where a model's class names come from, in one order for the worker and `check-model`.

1. `labels_path` from the config (one label per line);
2. the model's own metadata (`names`, `labels` or `classes`: Ultralytics exports write
   `names` as a Python dict literal `{0: 'person', ...}`; a JSON list or one name per line
   are read too);
3. a labels file beside the model, named after it (`yolox_s.onnx` -> `yolox_s.labels`,
   `yolox_s.names` or `yolox_s.txt`), as models are commonly shipped;
4. the 80 COCO names when the model predicts 80 classes (most public detectors are COCO);
5. `class_N` otherwise.

A list whose length differs from the model's class count is an error naming where it came
from: a wrong labels file silently renames every detection, which is worse than no label.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamwarden.inference.detection import Detection
from streamwarden.inference.detectors.base import Detector, ModelError, WrappedDetector
from streamwarden.inference.detectors.coco import COCO_LABELS

METADATA_KEYS = ("names", "labels", "classes")
SIDE_SUFFIXES = (".labels", ".names", ".txt")


@dataclass(frozen=True)
class Labels:
    names: list[str]
    source: str  # said by check-model and logged: "labels file /m/x.txt", "80 COCO classes assumed"


def read_labels(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"labels file {path} cannot be read: {exc}") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file {path} has no labels")
    return labels


def parse_metadata_names(text: str) -> list[str] | None:
    """A label list from a metadata value: dict {index: name}, list, or lines; None if none."""
    value: object = None
    for parse in (ast.literal_eval, json.loads):
        try:
            value = parse(text)
            break
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    if isinstance(value, dict):
        try:
            ordered = sorted(value.items(), key=lambda kv: int(kv[0]))
        except (TypeError, ValueError):
            return None
        names = [str(name) for _, name in ordered]
    elif isinstance(value, list | tuple):
        names = [str(name) for name in value]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if len(names) < 2:
            return None
    return names or None


def beside(model_path: Path) -> Path | None:
    """The labels file shipped next to the model, if there is one."""
    for suffix in SIDE_SUFFIXES:
        candidate = model_path.with_suffix(suffix)
        if candidate != model_path and candidate.is_file():
            return candidate
    return None


def _checked(names: list[str], classes: int | None, where: str, model_path: Path) -> Labels:
    if classes is not None and len(names) != classes:
        raise ModelError(f"{where} has {len(names)} labels but model {model_path} predicts "
                         f"{classes} classes")
    return Labels(names, where)


def resolve_labels(model_path: Path, labels_path: Path | None, metadata: dict[str, str],
                   classes: int | None) -> Labels:
    """The model's labels and where they came from (the order in the module docstring)."""
    if labels_path is not None:
        return _checked(read_labels(labels_path), classes, f"labels file {labels_path}",
                        model_path)
    for key in METADATA_KEYS:
        names = parse_metadata_names(metadata[key]) if key in metadata else None
        if names:
            return _checked(names, classes, f"the model's metadata ({key!r})", model_path)
    side = beside(model_path)
    if side is not None:
        return _checked(read_labels(side), classes, f"labels file {side} (beside the model)",
                        model_path)
    if classes is None or classes == len(COCO_LABELS):
        return Labels(list(COCO_LABELS), "80 COCO classes assumed")
    return Labels([f"class_{i}" for i in range(classes)],
                  f"no labels found: {classes} classes named class_0..class_{classes - 1}")


class KeepClasses(WrappedDetector):
    """Only the detections whose label is in `classes` (`[inference] classes`), in the worker.

    Filtering before results leave the worker keeps unwanted labels (COCO's "bench", "potted
    plant") out of the socket, the event log and the WebSocket. Names the model does not have
    are refused when it loads: a typo would otherwise mean events that never come.
    """

    def __init__(self, inner: Detector, classes: list[str]):
        super().__init__(inner)
        unknown = [c for c in classes if c not in inner.labels]
        if unknown and inner.labels:  # a plugin may not declare its labels
            shown = ", ".join(inner.labels[:12]) + (", ..." if len(inner.labels) > 12 else "")
            raise ModelError(f"[inference] classes {unknown} are not labels of model "
                             f"{inner.name} (its labels: {shown})")
        self.classes = set(classes)

    def detect(self, frames: list[np.ndarray]) -> list[list[Detection]]:
        return [[d for d in found if d.label in self.classes]
                for found in self.inner.detect(frames)]
