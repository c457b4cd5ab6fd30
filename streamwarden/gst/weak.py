"""Callbacks that GStreamer holds without keeping their Python owner alive.

A pad probe or a signal handler is a Python callable owned by a C object (the pad, the
element). If that callable is a bound method or a closure over its owner, the owner keeps
the element alive through its Python wrapper and the element keeps the owner alive through
the callable: a cycle that passes through C, which Python's garbage collector cannot see.
Nothing in it is ever freed, including the pipeline's bus and its socket pair, which is how
every stream add/delete and reconnect used to leak two file descriptors.

So every callable handed to GStreamer goes through `weak_method`: it holds its owner weakly,
and once the owner is gone it answers with a fixed value (e.g. DROP for a probe) and does
nothing else. The owner is kept alive by whoever really owns it (the manager, the hub).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any


def weak_method(method: Callable[..., Any], default: Any = None) -> Callable[..., Any]:
    """`method` (a bound method), holding its object weakly; `default` once it is gone."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        target = ref()
        return default if target is None else target(*args)

    return call
