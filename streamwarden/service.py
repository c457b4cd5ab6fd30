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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import uvicorn
from pydantic import ValidationError

from streamwarden.api.clients import OpenClients
from streamwarden.config.diff import ReloadPlan
from streamwarden.config.model import (
    Config,
    InferenceSection,
    MqttSection,
    RecordingSection,
    StreamConfig,
)
from streamwarden.config.source import ConfigFile, with_environment_token
from streamwarden.consumers.frame_counter import FrameCounter
from streamwarden.db import Database
from streamwarden.demo.scene import DEMO_CAMERA_PORT, DemoCamera, demo_cameras, demo_streams
from streamwarden.feature import Feature
from streamwarden.file_sources import file_source_problem
from streamwarden.gst.loop import GstLoop
from streamwarden.gst.reaper import Reaper
from streamwarden.heap import Heap
from streamwarden.hooks.runner import HookRunner
from streamwarden.hooks.webhooks import Webhooks
from streamwarden.inference.controller import InferenceController
from streamwarden.ingest.registry import StreamRegistry
from streamwarden.live.viewers import LiveViewers
from streamwarden.manager import StreamManager
from streamwarden.mqtt import MqttBridge
from streamwarden.notify import Notifier
from streamwarden.pixels.shared import SharedPixels
from streamwarden.readiness import Readiness, Verdict
from streamwarden.recording.camera_periods import CameraPeriods
from streamwarden.recording.control import RecordingControl
from streamwarden.recording.gaps import GapStore
from streamwarden.recording.history import History
from streamwarden.recording.index import RecordingIndex
from streamwarden.recording.reconcile import reconcile
from streamwarden.recording.retention import enforce
from streamwarden.recording.retention_rule import Padding
from streamwarden.recording.timeline_keeper import HEARTBEAT_S, TimelineKeeper
from streamwarden.reload import Reloader
from streamwarden.restream.server import RestreamServer
from streamwarden.secret_key import SecretKeyError
from streamwarden.stream_store import StreamStore
from streamwarden.users.accounts import Accounts
from streamwarden.users.gate import Gate
from streamwarden.users.passwords import HashParams
from streamwarden.users.sessions import Sessions, UrlSigner

if TYPE_CHECKING:
    from streamwarden.cluster.node import ClusterNode
    from streamwarden.demo.camera import SyntheticCamera
    from streamwarden.hass.bridge import HassBridge

log = logging.getLogger("streamwarden")

EVENT_EXPIRY_S = 1.0  # how often open detection events are checked for their end


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
    inference: InferenceSection = field(default_factory=InferenceSection)  # pre/post-roll
    streams: StreamRegistry | None = None  # each stream's buffer_duration (its ring)
    default_buffer: float = 10.0  # a stream no longer running: [stream_defaults]'s

    def __call__(self) -> None:
        rec = self.section
        enforce(self.db, rec.retention, rec.max_size, gaps=self.gaps,
                event_retention=rec.event_retention, padding=self.padding)

    def padding(self, stream_id: str) -> Padding:
        """What counts as an event's footage on this stream (also the events API's)."""
        stream = self.streams.find(stream_id) if self.streams is not None else None
        buffer = stream.settings.buffer_duration if stream is not None else self.default_buffer
        return Padding.of(self.inference.pre_roll, self.inference.post_roll, buffer)


def _ping(db: Database) -> None:
    db.conn.execute("SELECT 1").fetchone()


class Service:
    def __init__(self, config: Config, demo: bool = False,
                 config_file: ConfigFile | None = None):
        config = with_environment_token(config)
        self.config = config
        self.demo = demo
        # before anything else: a users file with a weak or malformed hash stops start-up here
        users = config.users
        self.accounts = Accounts.load(users.file, HashParams(**users.hash.model_dump()),
                                      HashParams(**users.min_hash.model_dump()))
        self.gate = Gate(config.api.token, Sessions(users.session_ttl), UrlSigner(),
                         bool(users.file))
        self.db = Database(config.app.database)
        try:  # before anything else starts: a missing key file stops start-up here
            self.stored = self.db.call(StreamStore.open, self.db, config.app.key_path)
        except SecretKeyError:
            self.db.close()
            raise
        self.loop = GstLoop()
        self.reaper = Reaper()
        self.heap = Heap()
        self.notifier = Notifier()
        self.gaps = GapStore(self.db)
        self.history = History(self.db)
        self.timeline = TimelineKeeper(self.db, self.gaps, self.history)
        self.streams = StreamRegistry()
        self.storage_limits = StorageLimits(self.db, config.recording, self.gaps,
                                            config.inference, self.streams,
                                            config.stream_defaults.buffer_duration)
        self.index = RecordingIndex(self.db, on_change=self.storage_limits,
                                    emit=self.notifier.publish_threadsafe, gaps=self.gaps,
                                    history=self.history)
        features = self._build_features(config)
        self.manager = StreamManager(config, self.loop, self.reaper, self.streams, features,
                                     self.notifier.publish_threadsafe)
        self.mqtt = MqttBridge(config.mqtt) if config.mqtt else None
        if self.mqtt is not None:
            self.notifier.listeners.append(self.mqtt.handle)
        self.hass = self._home_assistant(config)
        # Hooks and webhooks listen like the MQTT bridge: they queue, never wait.
        self.hooks = HookRunner(config.hooks) if config.hooks.configured else None
        self.webhooks = Webhooks(config.webhooks) if config.webhooks else None
        for listener in (self.hooks, self.webhooks):
            if listener is not None:
                self.notifier.listeners.append(listener.handle)
        self.clients = OpenClients()  # WebSockets and MJPEG streams, ended first on shutdown
        self.reloader = Reloader(config_file, self.manager, lambda: self.config,
                                 self.adopt_config)
        self.demo_camera: SyntheticCamera | None = None
        self._tasks: list[asyncio.Task] = []
        self.readiness = Readiness()
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
        self.restream = (RestreamServer(config.restream, self.streams, self.loop,
                                        self.accounts, config.users)
                         if config.restream.enabled else None)
        self.live = LiveViewers(self.streams, self.loop)
        self.pixels = SharedPixels(config.inference.frame_width)
        self.inference = InferenceController(config, self.db, publish, self.pixels,
                                             self.recording, self.streams, self.loop)
        features: list[Feature | None] = [self.recording, CameraPeriods(self.db, self.history),
                                          self.restream, self.live, self.inference, self.pixels]
        return [feature for feature in features if feature is not None]

    def _home_assistant(self, config: Config) -> HassBridge | None:
        """`[mqtt] home_assistant`: discovery, states, pictures and switches (hass/)."""
        if self.mqtt is None or config.mqtt is None or not config.mqtt.home_assistant:
            return None
        from streamwarden.hass.bridge import HassBridge
        from streamwarden.hass.control import ServiceControl

        bridge = HassBridge(self.mqtt, ServiceControl(self),
                            labels=config.mqtt.labels(config.inference.record_on),
                            off_delay=config.inference.event_gap,
                            interval=config.mqtt.snapshot_interval,
                            discovery_prefix=config.mqtt.discovery_prefix)
        self.notifier.listeners.append(bridge.handle)
        return bridge

    async def startup(self) -> None:
        self.notifier.bind(asyncio.get_running_loop())
        if self.hass is not None:
            self.hass.start()  # before connecting: the first connect announces every camera
        if self.mqtt is not None:
            self.mqtt.start()
        if self.webhooks is not None:
            self.webhooks.start()
        await self.db.run(reconcile, self.db, self.recording.path)
        if closed := await self.db.run(self.gaps.close_dangling):
            log.warning("%d recording gap(s) left open by the last run closed", closed,
                        extra={"event": "gaps_closed", "closed": closed})
        await self.db.run(self.timeline.started, time.time())
        self.loop.start()
        self.manager.start()
        if self.restream is not None:
            self.loop.call(self.restream.start)
        demo_cameras = await asyncio.to_thread(self._start_demo_camera) if self.demo else []
        if self.cluster is not None:  # the cluster's camera list says what runs here
            self.cluster.start(asyncio.get_running_loop())
        else:
            for stream, source in await self.db.run(self._streams_to_start):
                await self.manager.add(stream, source)
            if self.demo_camera is not None:
                await self._add_demo_streams(demo_cameras, self.demo_camera.url(""))
        self.readiness.starting_with([stream.id for stream in self.manager.all()])
        self._tasks.append(asyncio.create_task(self.manager.supervise(), name="supervisor"))
        self._tasks.append(asyncio.create_task(self._janitor(), name="janitor"))
        self._tasks.append(asyncio.create_task(self._trim_heap(), name="heap-trim"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="timeline"))
        if self.reloader.source is not None:
            self._tasks.append(asyncio.create_task(self.reloader.watch(), name="config-watch"))
        self.reloader.bind(asyncio.get_running_loop())  # SIGHUP before this: ignored, logged
        self._tasks.append(asyncio.create_task(self._end_quiet_events(), name="event-ends"))
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
            allowed = self.config.api.allowed_file_dirs
            if problem := next((p for uri in (stream.uri, stream.detect_uri) if uri
                                and (p := file_source_problem(uri, allowed))), None):
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

    async def _trim_heap(self) -> None:
        """Every `memory_trim_interval`: the C heap's free pages back to the system (see
        heap.py: without it the RSS climbs under churn while nothing in use grows)."""
        if not self.heap.can_trim:
            log.info("memory trimming is off: the C library has no malloc_trim")
            return
        while True:
            interval = self.config.app.memory_trim_interval  # read each time: reloadable
            await asyncio.sleep(interval or 60.0)
            if not self.config.app.memory_trim_interval:
                continue
            try:
                released = await asyncio.to_thread(self.heap.trim)
            except Exception:  # logged, never fatal: the next interval tries again
                log.exception("memory trim failed")
                continue
            log.debug("memory trim gave back %.1f MiB", released / 2**20)

    async def _heartbeat(self) -> None:
        """The run goes on (its stored end moves), and settled lost seconds are counted."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            streams = [(s.id, s.settings.timeout) for s in self.manager.all()]
            try:
                await self.db.run(self.timeline.heartbeat, time.time(), streams)
            except Exception:  # logged, never fatal: the next beat tries again
                log.exception("timeline heartbeat failed")

    async def _end_quiet_events(self) -> None:
        """A tracked object's event ends when it was not seen for its timeout, or its stream
        sent nothing for `event_gap`; a camera that went dark sends no result to notice that
        by, so a clock does (off this loop: the event log's lock may be held while a picture
        is drawn)."""
        events = self.inference.events
        while True:
            await asyncio.sleep(EVENT_EXPIRY_S)
            try:
                await asyncio.to_thread(events.expire, time.time())
            except Exception:  # never fatal; the next round tries again
                log.exception("ending quiet detection events failed")

    def _start_demo_camera(self) -> list[DemoCamera]:
        """The demo's RTSP server, one mount per scene (demo/scene.py); clips from the cache."""
        from streamwarden.demo.camera import CameraMount, SyntheticCamera
        from streamwarden.demo.clip import ClipSpec

        cameras = demo_cameras()
        if len(cameras) == 1:
            log.warning("demo: no person scene (it shows scikit-image's astronaut picture: "
                        "pip install scikit-image)")
        mounts = [CameraMount(c.path, ClipSpec(width=c.size[0], height=c.size[1], seconds=10,
                                               image=c.image))
                  for c in cameras]
        camera = SyntheticCamera(mounts, _free_port("127.0.0.1", DEMO_CAMERA_PORT))
        self.loop.call(camera.attach, self.loop.context)
        self.demo_camera = camera
        log.info("demo camera serving %s", ", ".join(camera.url(c.path) for c in cameras))
        return cameras

    async def _add_demo_streams(self, cameras: list[DemoCamera], url: str) -> None:
        """The demo's streams, recorded (and the person detected), unless the config file or
        the API already has a stream by that id."""
        running = {stream.id for stream in self.manager.all()}
        for stream in demo_streams(cameras, url, self.config):
            if stream.id not in running:
                await self.manager.add(stream)
                self.manager.attach(stream.id, FrameCounter())

    async def ready(self) -> Verdict:
        """Readiness (`GET /health/ready`): the start-up facts and a database round trip."""
        try:
            await asyncio.wait_for(self.db.run(_ping, self.db), timeout=2.0)
            database_ok = True
        except Exception:  # closed, locked past 2 s, broken: not ready, whatever the cause
            database_ok = False
        states = {s.id: s.supervisor.state.value for s in self.manager.all()}
        return self.readiness.check(states, database_ok)

    async def shutdown(self) -> None:
        if self.cluster is not None:  # hand the cameras over while they still run here
            await self.cluster.drain()
        stopping_since = time.time()
        self.readiness.stopping = True
        if self.hass is not None:  # streams stopping now are not deleted from Home Assistant
            await self.hass.stop()
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
        # After the streams: their last segments' hooks get a second to run or be sent. The
        # segments' rows are written (and announced) on the database thread: wait for it first.
        closers = [c.close() for c in (self.hooks, self.webhooks) if c is not None]
        if closers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.db.run(lambda: None), timeout=1.0)
            await asyncio.gather(*closers, return_exceptions=True)
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
        users = bool(self.config.users.file)
        problem = (api.exposure_problem(users)
                   or self.config.restream.exposure_problem(users))
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
