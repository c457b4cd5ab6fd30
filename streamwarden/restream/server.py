"""RTSP re-serving of every stream at `rtsp://<host>:<port>/<id>`, without re-encoding.

One GstRtspServer; one shared media factory per stream. A media's pipeline is
`appsrc ! parser ! payloader` per track, built from the camera's current caps, and fed by the
stream's RelayConsumer, which is attached when the first reader's media is configured and
detached when the last one goes. With a users file or a `[restream] user`, readers
authenticate (restream/auth.py) and each mount admits those who may see its stream.

As a feature, the server mounts a stream with `restream = true` when it is added and unmounts
it when it is removed (GStreamer thread, where the RTSP server also runs); turning `restream`
on or off in place (a config reload) mounts or unmounts it, and ends the sessions reading it.
Readers' requests find the stream through the registry.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from streamwarden.feature import Feature
from streamwarden.gst.init import Gst, GstRtspServer
from streamwarden.gst.weak import weak_method
from streamwarden.restream.auth import ReaderAuth
from streamwarden.restream.relay import RelayConsumer, RelayTarget
from streamwarden.users.backoff import BackoffPolicy

if TYPE_CHECKING:
    from streamwarden.config.model import RestreamSection, StreamConfig, UsersSection
    from streamwarden.gst.loop import GstLoop
    from streamwarden.ingest.registry import StreamRegistry
    from streamwarden.ingest.stream import Stream
    from streamwarden.users.accounts import Accounts

log = logging.getLogger("streamwarden.restream")

_VIDEO = {"video/x-h264": ("h264parse config-interval=-1", "rtph264pay"),
          "video/x-h265": ("h265parse config-interval=-1", "rtph265pay")}
_AUDIO = {"audio/mpeg": ("aacparse", "rtpmp4gpay"), "audio/x-opus": ("opusparse", "rtpopuspay"),
          "audio/x-alaw": ("identity", "rtppcmapay"), "audio/x-mulaw": ("identity",
                                                                         "rtppcmupay")}


class _StreamFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, server: RestreamServer, stream_id: str):
        super().__init__()
        self._server = server
        self.stream_id = stream_id
        self.set_shared(True)
        self.connect("media-configure", weak_method(self._on_media_configure))

    def do_create_element(self, _url):
        video, audio = self._server.caps_of(self.stream_id)
        if video is None or video.get_structure(0).get_name() not in _VIDEO:
            return None  # no picture yet (camera down): the reader gets 503 and retries
        parser, pay = _VIDEO[video.get_structure(0).get_name()]
        desc = (f'( appsrc name=v is-live=true format=time caps="{video.to_string()}" ! '
                f"{parser} ! {pay} name=pay0 pt=96 ")
        if audio is not None and audio.get_structure(0).get_name() in _AUDIO:
            aparser, apay = _AUDIO[audio.get_structure(0).get_name()]
            desc += (f'appsrc name=a is-live=true format=time caps="{audio.to_string()}" ! '
                     f"{aparser} ! {apay} name=pay1 pt=97 ")
        return Gst.parse_launch(desc + ")")

    def _on_media_configure(self, _factory, media) -> None:
        element = media.get_element()
        target = RelayTarget(element.get_by_name("v"), element.get_by_name("a"))
        self._server.attach(self.stream_id, target)
        media.connect("unprepared", lambda *_: self._server.detach(self.stream_id, target))


class RestreamServer(Feature):
    def __init__(self, config: RestreamSection, streams: StreamRegistry, loop: GstLoop,
                 accounts: Accounts, users: UsersSection):
        self.config = config
        self.streams = streams
        self.loop = loop
        self._server = GstRtspServer.RTSPServer()
        self._server.set_address(config.host)
        self._server.set_service(str(config.port))
        self.auth: ReaderAuth | None = None
        legacy = (config.user, config.password) if config.user and config.password else None
        if legacy is not None or users.file:
            self.auth = ReaderAuth(accounts, legacy, users.restream_credentials_ttl,
                                   BackoffPolicy(free_failures=users.login_free_attempts,
                                                 max_delay=users.login_backoff_max))
            self._server.set_auth(self.auth)
        self._source_id = 0

    def start(self) -> None:
        """On the GStreamer thread: listen (the RTSP server runs in its main context)."""
        self._source_id = self._server.attach(None)
        if not self._source_id:
            raise OSError(f"cannot listen for RTSP on {self.config.listen}")
        log.info("restream: rtsp://%s/<stream id>", self.config.listen)

    def stop(self) -> None:
        if self._source_id:
            from streamwarden.gst.loop import GstLoop

            GstLoop.source_remove(self._source_id)
            self._source_id = 0
        self._server.get_session_pool().filter(
            lambda _pool, _session: GstRtspServer.RTSPFilterResult.REMOVE)

    # ---- feature hooks (GStreamer thread) --------------------------------------------------

    def stream_added(self, stream: Stream) -> None:
        if stream.config.restream:
            self.mount(stream.id)

    def stream_changed(self, stream: Stream, previous: StreamConfig) -> None:
        if stream.config.restream and not previous.restream:
            self.mount(stream.id)
        elif previous.restream and not stream.config.restream:
            self.unmount(stream.id)
            self._drop_readers(stream.id)

    def stream_removed(self, stream: Stream) -> None:
        self.unmount(stream.id)

    def mount(self, stream_id: str) -> None:
        factory = _StreamFactory(self, stream_id)
        if self.auth is not None:
            factory.set_permissions(self.auth.permissions_for(stream_id))
        self._server.get_mount_points().add_factory(f"/{stream_id}", factory)

    def unmount(self, stream_id: str) -> None:
        self._server.get_mount_points().remove_factory(f"/{stream_id}")

    def _drop_readers(self, stream_id: str) -> None:
        """End the sessions reading `stream_id` and close their readers' connections
        (re-serving it was turned off): a reader sees the end at once instead of a silence."""
        path = f"/{stream_id}"
        result = GstRtspServer.RTSPFilterResult

        def reads_path(session: GstRtspServer.RTSPSession) -> bool:
            return session.get_media(path)[0] is not None

        def reader(_server, client) -> GstRtspServer.RTSPFilterResult:
            found: list[bool] = []

            def look(_client, session: GstRtspServer.RTSPSession) -> int:
                found.append(reads_path(session))
                return result.KEEP

            client.session_filter(look)
            return result.REF if any(found) else result.KEEP

        readers = self._server.client_filter(reader)  # found before their sessions go
        self._server.get_session_pool().filter(
            lambda _pool, session: result.REMOVE if reads_path(session) else result.KEEP)
        for client in readers:
            client.close()

    # ---- called from the RTSP server's context ------------------------------------------

    def caps_of(self, stream_id: str) -> tuple[Gst.Caps | None, Gst.Caps | None]:
        def read() -> tuple[Gst.Caps | None, Gst.Caps | None]:
            stream = self.streams.get(stream_id)
            caps = []
            for kind in ("video", "audio"):
                tee = stream.tees.get(kind)
                caps.append(tee.get_static_pad("sink").get_current_caps() if tee else None)
            return caps[0], caps[1]

        try:
            return self.loop.call(read, timeout=5)
        except Exception:  # unknown or removed stream
            return None, None

    def attach(self, stream_id: str, target: RelayTarget) -> None:
        def add() -> None:
            stream = self.streams.get(stream_id)
            relay = stream.consumer(RelayConsumer)
            if relay is None:
                relay = RelayConsumer(stream_id, self.config.fallback)
                tee = stream.tees.get("video")
                relay.seed_caps(tee.get_static_pad("sink").get_current_caps() if tee else None)
                stream.attach(relay)
            relay.add_target(target)

        try:
            self.loop.call(add, timeout=5)
        except Exception as exc:
            log.warning("restream %s: cannot attach: %s", stream_id, exc)

    def detach(self, stream_id: str, target: RelayTarget) -> None:
        def remove() -> None:
            try:
                stream = self.streams.get(stream_id)
            except Exception:
                return
            relay = stream.consumer(RelayConsumer)
            if relay is not None and relay.remove_target(target) == 0:
                stream.detach(relay, eos=False)

        self.loop.submit(remove)
