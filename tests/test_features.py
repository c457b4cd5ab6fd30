"""Features plugged into the stream manager (feature.py): which hook runs when, on which thread,
and that nothing a feature holds leads back to the manager or the service.

Real parts: a real GStreamer loop and real stream pipelines (their camera is a closed loopback
port, so they just retry: the hooks do not need frames), and a running service.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import types
from collections import deque
from typing import Any

import pytest

from streamwarden.api.views import stream_health
from streamwarden.config.model import Config, StreamConfig
from streamwarden.consumers.frame_counter import FrameCounter
from streamwarden.feature import Feature
from streamwarden.gst.loop import GstLoop
from streamwarden.gst.reaper import Reaper
from streamwarden.ingest.registry import StreamExistsError, StreamRegistry
from streamwarden.ingest.stream import Stream
from streamwarden.manager import StreamManager
from streamwarden.recording.recorder import Recorder
from tests.conftest import free_port


class RefusedError(Exception):
    pass


class Probe(Feature):
    """Records every hook call with its thread; attaches a consumer of its own to each stream;
    refuses (in `prepare`) any stream that asks for inference."""

    def __init__(self, name: str, calls: list[tuple], registry: StreamRegistry):
        self.name, self.calls, self.registry = name, calls, registry

    def _record(self, hook: str, *details: Any) -> None:
        self.calls.append((self.name, hook, threading.current_thread().name, *details))

    def prepare(self, config: StreamConfig, previous: StreamConfig | None) -> None:
        self._record("prepare", config.id, previous.enable_recording if previous else None)
        if config.enable_inference:
            raise RefusedError(config.id)

    def stream_added(self, stream: Stream) -> None:
        self._record("added", stream.id, self.registry.find(stream.id) is stream)
        stream.attach(FrameCounter(f"probe-{self.name}"))

    def stream_changed(self, stream: Stream, previous: StreamConfig) -> None:
        self._record("changed", previous.enable_recording, stream.config.enable_recording)

    def stream_removed(self, stream: Stream) -> None:
        self._record("removed", stream.id, stream.consumer(FrameCounter) is None,
                     stream.id in self.registry)

    def health(self, stream: Stream) -> dict[str, Any]:
        return {f"probe_{self.name}": stream.id}


@pytest.fixture
def manager_parts():
    loop, reaper = GstLoop(), Reaper()
    loop.start()
    yield loop, reaper
    loop.stop(timeout=2)
    reaper.close()


def _taken(calls: list[tuple]) -> list[tuple]:
    """The calls so far (then forgotten), a blocking hook's thread named "worker": asyncio's
    executor may run two of them on two of its threads (it starts a new one when the last is
    still marking itself idle, which a loaded machine makes likely)."""
    taken = [(c[0], c[1], _thread_kind(c[2]), *c[3:]) for c in calls]
    calls.clear()
    return taken


def _thread_kind(name: str) -> str:
    return name if name in ("gst-main", threading.main_thread().name) else "worker"


def test_hooks_run_in_order_on_the_threads_the_protocol_names(manager_parts):
    loop, reaper = manager_parts
    calls: list[tuple] = []
    registry = StreamRegistry()
    features = [Probe("a", calls, registry), Probe("b", calls, registry)]
    manager = StreamManager(Config(), loop, reaper, registry, features)
    dead = f"rtsp://127.0.0.1:{free_port()}/x"

    async def scenario() -> None:
        stream = await manager.add(StreamConfig(id="cam", uri=dead), origin="api")
        worker = "worker"
        assert calls[0][2] not in ("gst-main", threading.current_thread().name)  # may block
        assert _taken(calls) == [("a", "prepare", worker, "cam", None),
                                 ("b", "prepare", worker, "cam", None),
                                 ("a", "added", "gst-main", "cam", True),
                                 ("b", "added", "gst-main", "cam", True)]
        health = stream_health(stream, manager.features)
        assert health["probe_a"] == "cam" and health["probe_b"] == "cam"

        await manager.update("cam", {"enable_recording": True})  # in place
        assert [c[:2] for c in calls[:2]] == [("a", "prepare"), ("b", "prepare")]
        assert calls[0][4] is False  # prepare saw the previous config
        assert _taken(calls)[2:] == [("a", "changed", "gst-main", False, True),
                                     ("b", "changed", "gst-main", False, True)]

        with pytest.raises(RefusedError):  # refused in prepare: nothing changed
            await manager.update("cam", {"enable_inference": True})
        assert not manager.get("cam").config.enable_inference
        with pytest.raises(RefusedError):
            await manager.add(StreamConfig(id="new", uri=dead, enable_inference=True))
        assert "new" not in registry
        assert [c[1] for c in _taken(calls)] == ["prepare"] * 2

        with pytest.raises(StreamExistsError):
            await manager.add(StreamConfig(id="cam", uri=dead))
        assert not _taken(calls)

        with pytest.raises(RefusedError):  # a restart refused in prepare: the stream stays
            await manager.update("cam", {"timeout": 7, "enable_inference": True})
        assert manager.get("cam") is stream and [c[:2] for c in _taken(calls)] == [("a", "prepare")]

        await manager.update("cam", {"timeout": 7})  # a source setting: removed, added again
        restarted = manager.get("cam")
        assert restarted is not stream and restarted.origin == "api"
        assert [c[:3] for c in _taken(calls)] == [  # prepared before anything stops
            ("a", "prepare", worker), ("b", "prepare", worker),
            ("a", "removed", "gst-main"), ("b", "removed", "gst-main"),
            ("a", "added", "gst-main"), ("b", "added", "gst-main")]

        await manager.remove("cam")
        # after the stream's consumers were detached and it left the registry
        assert _taken(calls) == [("a", "removed", "gst-main", "cam", True, False),
                                 ("b", "removed", "gst-main", "cam", True, False)]
        await manager.close()

    asyncio.run(asyncio.wait_for(scenario(), 60))


class StateProbe(Feature):
    """Records the state changes it is told of; raises on each if `fail`."""

    def __init__(self, calls: list[tuple], fail: bool = False):
        self.calls, self.fail = calls, fail

    def state_changed(self, stream: Stream, transition) -> None:
        self.calls.append((threading.current_thread().name, stream.id, transition.old.value,
                           transition.new.value, self.fail))
        if self.fail:
            raise RuntimeError("a feature's bug")


def test_state_changes_reach_every_feature_on_the_gstreamer_thread(manager_parts):
    loop, reaper = manager_parts
    calls: list[tuple] = []
    features = [StateProbe(calls, fail=True), StateProbe(calls)]
    manager = StreamManager(Config(), loop, reaper, StreamRegistry(), features)
    dead = f"rtsp://127.0.0.1:{free_port()}/x"

    async def scenario() -> None:
        await manager.add(StreamConfig(id="cam", uri=dead, timeout=1, restart_timeout=1))
        for _ in range(100):
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.1)
        await manager.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))
    # "added", then the refused connection; the first feature's exception is logged, the
    # second is still told, and supervision goes on
    assert calls[:4] == [("gst-main", "cam", "starting", "starting", True),
                         ("gst-main", "cam", "starting", "starting", False),
                         ("gst-main", "cam", "starting", "retrying", True),
                         ("gst-main", "cam", "starting", "retrying", False)]


def _leads_to(root: object, targets: dict[int, str], limit: int = 50_000) -> str | None:
    """The first path of references from `root` to one of `targets`, or None.

    Follows what Python code holds: attributes of streamwarden objects, containers, bound
    methods, closures and partials (not module globals, not GStreamer's C side)."""
    seen = {id(root)}
    queue = deque([(root, type(root).__name__)])
    while queue and len(seen) < limit:
        obj, path = queue.popleft()
        for label, ref in _references(obj):
            if id(ref) in targets:
                return f"{path}.{label} -> {targets[id(ref)]}"
            if id(ref) not in seen:
                seen.add(id(ref))
                queue.append((ref, f"{path}.{label}"))
    return None


def _references(obj: object) -> list[tuple[str, object]]:
    if isinstance(obj, dict):
        return [(f"[{key!r}]", value) for key, value in list(obj.items())]
    if isinstance(obj, list | tuple | set | frozenset | deque):
        return [(f"[{index}]", item) for index, item in enumerate(list(obj))]
    if isinstance(obj, types.MethodType):
        return [("__self__", obj.__self__)]
    if isinstance(obj, functools.partial):
        return [("func", obj.func), ("args", obj.args), ("keywords", obj.keywords)]
    if isinstance(obj, types.FunctionType):
        return [(f"<closure {n}>", cell.cell_contents)
                for n, cell in enumerate(obj.__closure__ or ())
                if cell.cell_contents is not None]
    if type(obj).__module__.startswith("streamwarden") and hasattr(obj, "__dict__"):
        return list(vars(obj).items())
    return []


def test_nothing_a_feature_holds_leads_back_to_the_manager_or_the_service(service_factory):
    """The features get the registry, the loop and the notifier; not the manager. The one
    path that used to exist (inference held the manager to start event recordings) and the
    ones a stream could open (its state callback, the index's storage callback) stay shut."""
    dead = f"rtsp://127.0.0.1:{free_port()}/x"
    svc = service_factory(Config(streams=[StreamConfig(id="cam", uri=dead, restream=True,
                                                       enable_recording=True)]))
    service = svc.service
    features = service.manager.features
    assert {type(f).__name__ for f in features} == {
        "RecordingControl", "CameraPeriods", "RestreamServer", "LiveViewers",
        "InferenceController", "SharedPixels"}
    assert service.manager.get("cam").consumer(Recorder) is not None  # walked through too
    targets = {id(service.manager): "the manager", id(service): "the service"}
    for feature in features:
        assert _leads_to(feature, targets) is None, _leads_to(feature, targets)
    assert _leads_to(service.streams, targets) is None
    assert _leads_to(service.manager, {id(service): "the service"}) is None


def test_the_reference_walk_finds_a_path_through_callbacks():
    target, elsewhere = object(), object()

    def closure() -> object:
        return target

    chain = {"callback": functools.partial(print, [closure])}
    assert _leads_to(chain, {id(target): "target"}) == (
        "dict.['callback'].args.[0].[0].<closure 0> -> target")
    assert _leads_to(chain, {id(elsewhere): "elsewhere"}) is None
