"""When a tracked object is real enough to be an event: the median of its recent scores.

The detector's `confidence` decides which boxes the tracker takes; one weak box is cheap to
follow but costly to announce (an event row, a push, a hook, a recording). Following
Frigate's `threshold`, an object becomes an event only once the MEDIAN of its last
`HISTORY` sightings' scores reaches `event_score`, the history padded with zeros while it is
shorter than `PADDED_TO`. So a new object needs at least two sightings at or above the
score among its first three, and later a majority of its recent ones: a box that flickers
just above `confidence` (a burnt-in clock the INT8 model scores 0.35-0.42, background
texture) never gets there, while a person scoring 0.5-0.8 does on the second call.

Once confirmed an object stays confirmed for its life: a person who turns away or walks
into shadow keeps their event. The rule is per object and needs no clock: it counts
sightings (model calls that matched the object), not seconds.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

HISTORY = 10  # the recent sightings whose median counts (Frigate keeps 10 too)
PADDED_TO = 3  # a shorter history is padded with zeros: one sighting is never enough


def median_score(scores: list[float] | deque[float]) -> float:
    """The median of `scores` padded with zeros to `PADDED_TO` values."""
    padded = [*scores, *([0.0] * (PADDED_TO - len(scores)))]
    return statistics.median(padded)


@dataclass
class Confirmation:
    """One tracked object's score history and whether it has become an event."""

    threshold: float  # `[inference] event_score`; 0: confirmed on its first sighting
    scores: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))
    confirmed: bool = False

    def add(self, score: float) -> bool:
        """A sighting's score; True on the sighting that confirms the object (once)."""
        self.scores.append(score)
        if self.confirmed:
            return False
        if self.threshold <= 0 or median_score(self.scores) >= self.threshold:
            self.confirmed = True
            return True
        return False


# The built-in NanoDet-g's default `event_score` per precision, measured with
# bench/detect_quality.py + bench/event_score_sweep.py and the test camera's clock overlay
# (docs/architecture.md): INT8 moves weak scores up by up to ~0.1.
BUILTIN_EVENT_SCORE = {"fp32": 0.35, "int8": 0.45}


def builtin_event_score(precision: str) -> float:
    return BUILTIN_EVENT_SCORE.get(precision, BUILTIN_EVENT_SCORE["fp32"])
