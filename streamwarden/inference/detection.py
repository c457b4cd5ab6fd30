"""What a detector returns, in a form that crosses a process boundary as plain tuples."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Detection:
    """One object in one frame. The box is normalised to 0-1 of the frame: (x0, y0, x1, y1)."""

    label: str
    confidence: float
    box: tuple[float, float, float, float]

    def to_wire(self) -> tuple[str, float, tuple[float, float, float, float]]:
        return (self.label, self.confidence, self.box)

    @classmethod
    def from_wire(cls, item: tuple) -> Detection:
        label, confidence, box = item
        return cls(str(label), float(confidence), tuple(float(v) for v in box))  # type: ignore[arg-type]

    def as_dict(self) -> dict:
        return {"label": self.label, "confidence": round(self.confidence, 4),
                "box": [round(v, 4) for v in self.box]}
