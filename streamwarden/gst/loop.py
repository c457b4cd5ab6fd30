"""The one GStreamer thread: a GLib main loop that owns every pipeline mutation.

GStreamer elements are thread-safe for data flow but building, linking, state changes and
removal from many threads at once is where races live. So every such mutation is marshalled
to this thread with `call()` (blocking, from plain threads) or `run()` (awaitable, from
asyncio), and bus messages are dispatched here too. Streaming threads never come here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from streamwarden.gst.init import GLib

log = logging.getLogger(__name__)
T = TypeVar("T")


class GstLoop:
    """A GLib main loop on a dedicated thread, with helpers to run callables on it."""

    def __init__(self) -> None:
        self.context = GLib.MainContext.default()
        self._loop = GLib.MainLoop.new(self.context, False)
        self._thread = threading.Thread(target=self._run, name="gst-main", daemon=True)
        self._started = threading.Event()

    def start(self) -> None:
        self._thread.start()
        self._started.wait(5)

    def _run(self) -> None:
        GLib.idle_add(self._started.set)
        self._loop.run()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self.context.invoke_full(GLib.PRIORITY_HIGH, self._loop.quit)
            self._thread.join(timeout)

    @property
    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        """Schedule `fn(*args)` on the GStreamer thread; the future carries result or error."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def runner() -> bool:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to the caller, not swallowed
                    future.set_exception(exc)
            return False

        if self.in_loop_thread:
            runner()
        else:
            self.context.invoke_full(GLib.PRIORITY_DEFAULT, runner)
        return future

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 30.0) -> T:
        """Run `fn(*args)` on the GStreamer thread and wait for its result."""
        return self.submit(fn, *args).result(timeout)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Awaitable form of `call` for the asyncio thread."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    def timeout_add(self, interval_ms: int, fn: Callable[[], bool]) -> int:
        """Repeat `fn` on the GStreamer thread every interval until it returns False."""
        source = GLib.timeout_source_new(interval_ms)
        source.set_callback(lambda *_: fn())
        return source.attach(self.context)

    def timeout_once(self, delay_ms: int, fn: Callable[[], None]) -> int:
        def once() -> bool:
            fn()
            return False

        return self.timeout_add(delay_ms, once)

    @staticmethod
    def source_remove(source_id: int) -> None:
        context = GLib.MainContext.default()
        source = context.find_source_by_id(source_id)
        if source is not None:
            source.destroy()
