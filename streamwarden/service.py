"""The service: GStreamer thread, streams, optional demo camera and the HTTP API, in one process.

Start-up order: GStreamer thread → (demo camera) → streams from the config → API accepting.
SIGHUP reloads the config file (see reload.py): only what changed is applied.
Shutdown (SIGINT/SIGTERM, handled by uvicorn) runs in reverse: the API stops accepting, open
WebSockets are closed with 1001 and MJPEG streams ended, every stream sends EOS to its
consumers and is stopped, the GStreamer thread ends. The whole shutdown is bounded so the
process is gone within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn
from pydantic import ValidationError

from streamwarden.api.clients import OpenClients
from streamwarden.config.diff import ReloadPlan
from streamwarden.config.model import Config, MqttSection, RecordingSection, StreamConfig
from streamwarden.config.source import ConfigFile, with_environment_token
from streamwarden.consumers.frame_counter import FrameCounter
from streamwarden.db import Database
from streamwarden.feature import Feature
from streamwarden.file_sources import file_source_problem
from streamwarden.gst.loop import GstLoop
from streamwarden.gst.reaper import Reaper
from streamwarden.inference.controller import InferenceController
from streamwarden.ingest.registry import StreamRegistry
from streamwarden.live.viewers import LiveViewers
from streamwarden.manager import StreamManager
from streamwarden.mqtt import MqttBridge
from streamwarden.notify import Notifier
from streamwarden.pixels.shared import SharedPixels
from streamwarden.recording.camera_periods import CameraPeriods
from streamwarden.recording.control import RecordingControl
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.history import History
from streamwarden.recording.index import RecordingIndex
from streamwarden.recording.reconcile import reconcile
from streamwarden.recording.retention import enforce
from streamwarden.recording.timeline_keeper import HEARTBEAT_S, TimelineKeeper
from streamwarden.reload import Reloader
from streamwarden.restream.server import RestreamServer
from streamwarden.secret_key import SecretKeyError
from streamwarden.stream_store import StreamStore

if TYPE_CHECKING:
    from streamwarden.cluster.node import ClusterNode
    from streamwarden.demo.camera import SyntheticCamera

log = logging.getLogger("streamwarden")

DEMO_STREAM_ID = "demo"
DEMO_CAMERA_PORT = 8555


def _free_port(host: str, preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port for the demo camera")


def check_listen(host: str, port: int) -> None:
    """Fail early, with a sentence, if the API address cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


class _Server(uvicorn.Server):
    """uvicorn, minus re-raising the signal after shutdown: a clean stop exits with 0; and
    before uvicorn drains the connections, the long-lived clients are told goodbye (see
    api/clients.py), so none is left for uvicorn to cancel with a traceback."""

    def __init__(self, config: uvicorn.Config, clients: OpenClients,
                 on_hangup: Callable[[], None]):
        super().__init__(config)
        self.clients = clients
        self.on_hangup = on_hangup  # SIGHUP: reload the config (schedules it, never blocks)

    async def shutdown(self, sockets=None) -> None:
        for server in getattr(self, "servers", []):
            server.close()  # accept nothing new while the clients are closing
        try:
            await self.clients.close_all()
        except Exception:  # never let a goodbye stop the shutdown
            log.exception("closing the API's clients failed")
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit)
                    for sig in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: self.on_hangup())
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class StorageLimits:
    """Retention by age and total size, run on the database thread after each closed segment
    and from the janitor. A plain object, not a method of the service: what the index (and
    through it the recording feature) holds must not lead back to the service. A config
    reload replaces `section`, so new retention values apply from the next run."""

    db: Database
    section: RecordingSection
    gaps: GapStore

    def __call__(self) -> None:
        rec = self.section
        if rec.retention is not None or rec.max_size is not None:
            enforce(self.db, rec.retention, rec.max_size, gaps=self.gaps)


class Service:
    def __init__(self, config: Config, demo: bool = False,
                 config_file: ConfigFile | None = None):
        config = with_environment_token(config)
        self.config = config
        self.demo = demo
        self.db = Database(config.app.database)
        try:  # before anything else starts: a missing key file stops start-up here
            self.stored = self.db.call(StreamStore.open, self.db, config.app.key_path)
        except SecretKeyError:
            self.db.close()
            raise
        self.loop = GstLoop()
        self.reaper = Reaper()
        self.notifier = Notifier()
        self.gaps = GapStore(self.db)
        self.history = History(self.db)
        self.timeline = TimelineKeeper(self.db, self.gaps, self.history)
        self.storage_limits = StorageLimits(self.db, config.recording, self.gaps)
        self.index = RecordingIndex(self.db, on_change=self.storage_limits,
                                    emit=self.notifier.publish_threadsafe, gaps=self.gaps,
                                    history=self.history)
        self.streams = StreamRegistry()
        features = self._build_features(config)
        self.manager = StreamManager(config, self.loop, self.reaper, self.streams, features,
                                     self.notifier.publish_threadsafe)
        self.mqtt = MqttBridge(config.mqtt) if config.mqtt else None
        if self.mqtt is not None:
            self.notifier.listeners.append(self.mqtt.handle)
        self.clients = OpenClients()  # WebSockets and MJPEG streams, ended first on shutdown
        self.reloader = Reloader(config_file, self.manager, lambda: self.config,
                                 self.adopt_config)
        self.demo_camera: SyntheticCamera | None = None
        self._tasks: list[asyncio.Task] = []
        self.cluster: ClusterNode | None = self._build_cluster(config) if config.cluster else None
        if self.cluster is not None:
            self.reloader.cluster_streams = self.cluster.load_file_streams

    def _build_cluster(self, config: Config) -> ClusterNode:
        """With `[cluster]`: the node runtime decides which streams run here (imported only
        then, so a single node never loads psycopg)."""
        from streamwarden.api.streams import stream_view
        from streamwarden.cluster.node import ClusterNode

        assert config.cluster is not None
        api = config.api
        url = config.cluster.advertise_url or (
            f"{'https' if api.tls_cert else 'http'}://{api.listen}")
        features = self.manager.features

        def views(ids: list[str]) -> dict:
            out = {}
            for stream_id in ids:
                with contextlib.suppress(Exception):  # removed meanwhile
                    out[stream_id] = stream_view(self.streams.get(stream_id),
                                                 features).model_dump(mode="json")
            return out

        return ClusterNode(config.cluster, url, self.manager, self.db, config.app.key_path,
                           views, list(config.streams))

    def _build_features(self, config: Config) -> list[Feature]:
        """Everything a stream can do besides ingesting, in the order the manager calls them.

        Each gets what it needs and no more: the registry to find streams, the GStreamer
        loop to change them, the notifier to report. Inference asks recording for event
        recordings; nothing holds the manager.
        """
        publish = self.notifier.publish_threadsafe
        self.recording = RecordingControl(config.recording, self.streams, self.loop,
                                          self.reaper, self.index, publish)
        self.restream = (RestreamServer(config.restream, self.streams, self.loop)
                         if config.restream.enabled else None)
        self.live = LiveViewers(self.streams, self.loop)
        self.pixels = SharedPixels(config.inference.frame_width)
        self.inference = InferenceController(config, self.db, publish, self.pixels,
                                             self.recording, self.streams, self.loop)
        features: list[Feature | None] = [self.recording, CameraPeriods(self.db, self.history),
                                          self.restream, self.live, self.inference, self.pixels]
        return [feature for feature in features if feature is not None]

    async def startup(self) -> None:
        self.notifier.bind(asyncio.get_running_loop())
        if self.mqtt is not None:
            self.mqtt.start()
        await self.db.run(reconcile, self.db, self.recording.path)
        if closed := await self.db.run(self.gaps.close_dangling):
            log.warning("%d recording gap(s) left open by the last run closed", closed,
                        extra={"event": "gaps_closed", "closed": closed})
        await self.db.run(self.timeline.started, time.time())
        self.loop.start()
        self.manager.start()
        if self.restream is not None:
            self.loop.call(self.restream.start)
        if self.demo:
            await asyncio.to_thread(self._start_demo_camera)
        if self.cluster is not None:  # the cluster's camera list says what runs here
            self.cluster.start(asyncio.get_running_loop())
        else:
            for stream, source in await self.db.run(self._streams_to_start):
                await self.manager.add(stream, source)
        camera = self.demo_camera
        if camera is not None and self.cluster is None \
                and DEMO_STREAM_ID not in {s.id for s in self.config.streams}:
            await self.manager.add(
                StreamConfig(id=DEMO_STREAM_ID, uri=camera.url("/demo"))
            )
            self.manager.attach(DEMO_STREAM_ID, FrameCounter())
        self._tasks.append(asyncio.create_task(self.manager.supervise(), name="supervisor"))
        self._tasks.append(asyncio.create_task(self._janitor(), name="janitor"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="timeline"))
        if self.reloader.source is not None:
            self._tasks.append(asyncio.create_task(self.reloader.watch(), name="config-watch"))
        self.reloader.bind(asyncio.get_running_loop())  # SIGHUP before this: ignored, logged
        log.info("streamwarden ready: %d stream(s), API on %s", len(self.manager.all()),
                 self.config.api.listen)

    def _streams_to_start(self) -> list[tuple[StreamConfig, str]]:
        """Config streams, then API-added streams from the database; the file wins on ids."""
        streams = [(s, "config") for s in self.config.streams]
        in_config = {s.id for s in self.config.streams}
        for stream_id, text in self.stored.streams():
            if stream_id in in_config:
                log.warning("stream %s is defined in the config file and was also added through "
                            "the API; the config file's definition is used", stream_id,
                            extra={"stream_id": stream_id, "event": "config_wins"})
                continue
            try:
                stream = StreamConfig.model_validate_json(text)
            except ValidationError as exc:  # its text would quote the URI: messages only
                reasons = "; ".join(str(e["msg"]) for e in exc.errors())
                log.error("stream %s stored in the database is not valid any more (%s); "
                          "skipped", stream_id, reasons, extra={"stream_id": stream_id})
                continue
            if problem := file_source_problem(stream.uri, self.config.api.allowed_file_dirs):
                log.error("stream %s stored in the database is not started: %s (the stream is "
                          "kept)", stream_id, problem, extra={"stream_id": stream_id})
                continue
            streams.append((stream, "api"))
        return streams

    async def adopt_config(self, config: Config, plan: ReloadPlan) -> None:
        """A config reload: take the new config's global keys that apply in place
        (`config.diff.APPLIED_IN_PLACE`); the reloader then changes the streams. Everything
        that reads the config per use (the janitor, the health supervisor, the API's checks
        of file sources, new streams' defaults) follows `self.config` / `manager.config`."""
        self.config = config
        self.manager.config = config
        self.storage_limits.section = config.recording
        if "app.log_level" in plan.applied:
            logging.getLogger().setLevel(config.app.log_level.upper())
        if "mqtt" in plan.applied:
            await self._reconnect_mqtt(config.mqtt)

    async def _reconnect_mqtt(self, section: MqttSection | None) -> None:
        """A changed `[mqtt]`: the old connection ends, a new one starts (counters kept)."""
        old, self.mqtt = self.mqtt, None
        if old is not None:
            self.notifier.listeners.remove(old.handle)
            await asyncio.to_thread(old.stop)
        if section is not None:
            bridge = MqttBridge(section)
            if old is not None:
                bridge.published, bridge.dropped = old.published, old.dropped
            self.notifier.listeners.append(bridge.handle)
            self.mqtt = bridge
            bridge.start()

    async def _janitor(self) -> None:
        while True:
            await asyncio.sleep(self.config.recording.janitor_interval)
            try:
                await self.db.run(self.storage_limits)
            except Exception:  # a janitor failure is logged, never fatal
                log.exception("storage janitor failed")

    async def _heartbeat(self) -> None:
        """The run goes on (its stored end moves), and settled lost seconds are counted."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            streams = [(s.id, s.settings.timeout) for s in self.manager.all()]
            try:
                await self.db.run(self.timeline.heartbeat, time.time(), streams)
            except Exception:  # logged, never fatal: the next beat tries again
                log.exception("timeline heartbeat failed")

    def _start_demo_camera(self) -> None:
        from streamwarden.demo.camera import CameraMount, SyntheticCamera
        from streamwarden.demo.clip import ClipSpec

        port = _free_port("127.0.0.1", DEMO_CAMERA_PORT)
        camera = SyntheticCamera([CameraMount("/demo", ClipSpec(seconds=10))], port)
        self.loop.call(camera.attach, self.loop.context)
        self.demo_camera = camera
        log.info("demo camera serving %s", camera.url("/demo"))

    async def shutdown(self) -> None:
        if self.cluster is not None:  # hand the cameras over while they still run here
            await self.cluster.drain()
        stopping_since = time.time()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.reloader.stop()
        try:
            await asyncio.wait_for(self.manager.close(), timeout=4.0)
        except TimeoutError:
            log.warning("streams did not stop within 4 s; exiting anyway")
        stoppers = [s.stop for s in (self.restream,) if s is not None]
        stoppers += [c.detach for c in (self.demo_camera,) if c is not None]
        for stop in stoppers:
            with contextlib.suppress(Exception):
                self.loop.call(stop, timeout=1.0)
        self.inference.close()
        if self.mqtt is not None:
            self.mqtt.stop()
        self.loop.stop(timeout=1.0)
        self.reaper.close()
        with contextlib.suppress(Exception):  # the database on a full disk: the run stays open
            await self.db.run(self.timeline.stopped, stopping_since)
        self.db.close()
        log.info("streamwarden stopped")

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM; SIGHUP reloads the config file."""
        from streamwarden.api.app import create_app

        api = self.config.api
        problem = api.exposure_problem() or self.config.restream.exposure_problem()
        if problem:
            raise PermissionError(problem)
        check_listen(api.host, api.port)
        if self.restream is not None:
            check_listen(self.config.restream.host, self.config.restream.port)
        if any(s.enable_inference for s in self.config.streams):
            self.inference.ensure_started()  # a bad model stops start-up here, named
        server = _Server(
            uvicorn.Config(
                create_app(self),
                host=api.host,
                port=api.port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=1,
                lifespan="on",
                ssl_certfile=api.tls_cert,
                ssl_keyfile=api.tls_key,
            ),
            self.clients,
            lambda: self.reloader.request("signal"),
        )
        server.run()
        if getattr(server, "started", True) is False:
            raise RuntimeError("the API server failed to start; see the log above")
