"""`[inference] plugin = "package.module:Class"`: a detector written in Python by the user.

The class is instantiated with no arguments inside the worker and must implement
`streamwarden.inference.detectors.base.Detector`. This is the extension point for runtimes
streamwarden does not wrap itself (and how the tests put a deliberately slow model in place).
"""

from __future__ import annotations

import importlib

from streamwarden.inference.detectors.base import Detector, ModelError


def load_plugin(spec: str) -> Detector:
    module_name, _, class_name = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"detector plugin {spec!r} cannot be imported: {exc}") from None
    detector = cls()
    if not isinstance(detector, Detector):
        raise ModelError(f"detector plugin {spec!r} is not a streamwarden Detector")
    return detector
