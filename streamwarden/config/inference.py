"""`[inference]`: which model runs, how frames reach it, and what makes a tracked object an
event. Apart from config/model.py, which imports it, because it is the largest section."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from streamwarden.config.durations import ByteSize, Duration
from streamwarden.config.zones import ObjectSelector
from streamwarden.inference.confirm import builtin_event_score
from streamwarden.inference.detectors.coco import BUILTIN_LABELS, CCTV_CLASSES
from streamwarden.media.activity import ActivitySettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


def _parse_tiles(value: object) -> int | str:
    if value in ("auto", "off"):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 16:
        return value
    raise ValueError(f'expected "auto", "off" or a number of tiles from 1 to 16, got {value!r}')


def _parse_classes(value: object) -> list[str] | str | None:
    if value is None or value == "all":
        return value
    if (isinstance(value, list) and value
            and all(isinstance(v, str) and v.strip() for v in value)):
        return [v.strip() for v in value]
    raise ValueError('expected a list of labels such as ["person", "car"], or "all"')


Tiles = Annotated[int | str, BeforeValidator(_parse_tiles),
                  Field(json_schema_extra={"examples": ["auto", "off", 2, 6]})]
Classes = Annotated[list[str] | str | None, BeforeValidator(_parse_classes)]


class InferenceSection(_Section):
    """Object detection for streams with `enable_inference`; runs in a worker process.

    With no `model_path` a built-in detector runs: `model = "nanodet"` (the default,
    NanoDet-g, 80 COCO classes, on ONNX Runtime; events for the CCTV classes unless `classes`
    says otherwise) or `model = "blazepose"` (MediaPipe's BlazePose person detector on LiteRT,
    or OpenCV's HOG where LiteRT is missing). `model_path` takes any ONNX detector with
    YOLOv5/YOLOv8/SSD-style outputs; `plugin = "package.module:Class"` a Python detector.
    `tiles` cuts wide frames into overlapping tiles so small objects stay visible to a model
    with a small input (see inference/detectors/tiling.py).
    """

    backend: Literal["cpu", "nvidia"] = "cpu"
    config_path: str | None = None  # DeepStream nvinfer config (backend "nvidia")
    model: Literal["nanodet", "blazepose"] = "nanodet"  # the built-in, without model_path
    # the built-in nanodet on the CPU backend: its INT8 file (2.2x cheaper a call, same
    # recall; its ~+0.1 on weak scores, a clock overlay as a person at 0.42, is kept out of
    # events by its event_score, 0.45) or fp32; the nvidia backend always runs fp32
    precision: Literal["int8", "fp32"] = "int8"
    model_path: str | None = None
    labels_path: str | None = None
    layout: Literal["auto", "yolov5", "yolov8", "ssd"] = "auto"
    input_size: int = Field(default=640, ge=32, le=4096)  # for models with dynamic input size
    confidence: float | None = Field(default=None, gt=0, le=1)  # None: the model's default
    # the median score of a tracked object's recent sightings (zero-padded to three) that
    # makes it an event (inference/confirm.py); None: measured per precision for the
    # built-in nanodet, 0 (every tracked object at once) for any other model
    event_score: float | None = Field(default=None, ge=0, le=1)
    iou: float = Field(default=0.45, gt=0, le=1)
    plugin: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    # None: the built-in nanodet's CCTV classes, every label of any other model; "all"; a list
    classes: Classes = None
    tiles: Tiles = "auto"
    batch_size: int = Field(default=1, ge=1, le=64)
    fps: float = Field(default=5.0, gt=0, le=120)
    # pixels handed to the model: 768 keeps a 16:9 frame above the widened input (736x416),
    # so it is never scaled up (640 cost 0.08 of precision in bench/detect_quality.py)
    frame_width: int = Field(default=768, ge=64, le=3840)
    # model calls side by side in the (niced) worker, one thread each; 0: one per CPU core
    threads: int = Field(default=0, ge=0, le=64)
    # skip the model on frames whose thumbnail did not change; None: on with the activity
    # gate, whose idle keyframes are otherwise a model call per GOP of a still picture
    motion_gate: bool | None = None
    # Decode at `fps` only while the compressed stream shows activity (P-frame sizes against
    # the camera's baseline, media/activity.py), keyframes only otherwise.
    activity_gate: bool = False  # opt-in: halves recall in busy scenes (docs: Activity gate)
    activity_threshold: float = Field(default=4.0, ge=1.0, le=100.0)  # deviations above mean
    activity_hold: Duration = 5.0  # active for this long after the last moving frame
    # labels ("person") or labels in a zone ("person@driveway", "*@driveway") that start an
    # event recording; a stream's own `record_on` replaces this list for that stream
    record_on: list[ObjectSelector] = []
    pre_roll: Duration | None = None  # None: the stream's buffer_duration
    post_roll: Duration = 10.0
    # a tracked object not detected for this long has left: its event closes
    event_gap: Duration = Field(default=5.0, gt=0)
    # an object whose box stays put this long is stationary (a parked car): it no longer
    # extends event recordings, and survives detection gaps up to `stationary_timeout`
    stationary_after: Duration = Field(default=10.0, gt=0)
    stationary_timeout: Duration = Field(default=300.0, gt=0)
    worker_deadline: Duration = 10.0  # a model call (or start-up) longer than this: restart
    worker_memory_limit: ByteSize = 2 * 1024**3

    @model_validator(mode="after")
    def _one_model(self) -> InferenceSection:
        if "model" in self.model_fields_set and (self.model_path or self.plugin):
            raise ValueError(f"model = {self.model!r} picks a built-in detector: it cannot go "
                             "with model_path or plugin")
        return self

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, classes: list[str] | str | None,
                       info: ValidationInfo) -> list[str] | str | None:
        """A built-in's labels are known here; a file's are checked when the worker loads it."""
        data = info.data
        if data.get("model_path") or data.get("plugin") or not isinstance(classes, list):
            return classes
        model = data.get("model", "nanodet")
        known = BUILTIN_LABELS[model]
        unknown = [c for c in classes if c not in known]
        if unknown:
            shown = ", ".join(known) if len(known) < 10 else "the 80 COCO classes, e.g. " \
                + ", ".join(known[:10])
            raise ValueError(f"{unknown} are not labels of the built-in model {model!r} "
                             f"({shown})")
        return classes

    def kept_classes(self) -> list[str] | None:
        """The labels events are made for; None: every label the model has."""
        if self.classes == "all":
            return None
        if self.classes is not None:
            return list(self.classes)
        if self.builtin_nanodet():
            return list(CCTV_CLASSES)
        return None

    @model_validator(mode="after")
    def _hold_in_range(self) -> InferenceSection:
        if not 0 <= self.activity_hold <= 600:
            raise ValueError("activity_hold must be between 0 and 10m")
        return self

    def builtin_nanodet(self) -> bool:
        return self.model == "nanodet" and not (self.model_path or self.plugin)

    def effective_event_score(self) -> float:
        """`event_score` as set, else the built-in nanodet's for the precision that runs
        (the nvidia backend runs fp32), else 0: an unmeasured model's objects are events
        from their first sighting, as before the rule."""
        if self.event_score is not None:
            return self.event_score
        if not self.builtin_nanodet():
            return 0.0
        return builtin_event_score(self.runs_precision())

    def runs_precision(self) -> str:
        """The built-in nanodet's file that runs: `precision` on the CPU, fp32 on nvidia."""
        return self.precision if self.backend == "cpu" else "fp32"

    def model_threads(self) -> int:
        """`threads`, with 0 as one per CPU core the process may use."""
        return self.threads or len(os.sched_getaffinity(0))

    @property
    def motion_gated(self) -> bool:
        """`motion_gate` as set, else on exactly when the activity gate is: a still scene's
        keyframes (one per GOP) then reach the model only when their picture changed
        (measured: `bench/inference.py --clients sw-still,sw-rec-only`, 4 streams, 5.7x
        ingest + record alone without it, 1.03-1.07x with it and the rest of the gate)."""
        return self.activity_gate if self.motion_gate is None else self.motion_gate

    def activity_settings(self) -> ActivitySettings | None:
        """The activity gate's settings, or None when the gate is off."""
        if not self.activity_gate:
            return None
        return ActivitySettings(threshold=self.activity_threshold, hold=self.activity_hold)
