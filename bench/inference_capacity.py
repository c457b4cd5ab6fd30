"""`inference.py --capacity`: the largest N at which a client keeps up, and what keeping up is.

Kept apart from inference.py (which runs and reports the clients) because the search is
plain arithmetic over a "does N keep up?" function: double until a count fails, then bisect.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def keeps_up(result: dict[str, Any], detect_fps: float) -> bool:
    """Every stream at >= 90 % of its detection rate and every frame recorded."""
    if "error" in result:
        return False
    rate = result.get("det_fps_min")
    detecting = rate is not None and rate >= 0.9 * detect_fps
    recording = (result.get("recordings") or {}).get("lossless", False)
    return detecting and recording


def largest_count(name: str, run: Callable[[int], dict[str, Any]], detect_fps: float,
                  maximum: int) -> dict[str, Any]:
    """The largest N (up to `maximum`) whose `run(N)` result keeps up: double, then bisect."""
    tried: dict[int, bool] = {}

    def ok(count: int) -> bool:
        if count not in tried:
            tried[count] = keeps_up(run(count), detect_fps)
            print(f"  capacity {name}: N={count} {'keeps up' if tried[count] else 'fails'}",
                  file=sys.stderr, flush=True)
        return tried[count]

    good, count = 0, 1
    while count <= maximum and ok(count):
        good, count = count, count * 2
    bad = min(count, maximum + 1)
    while bad - good > 1:
        middle = (good + bad) // 2
        good, bad = (middle, bad) if ok(middle) else (good, middle)
    return {"client": name, "capacity": good, "tried": tried}
