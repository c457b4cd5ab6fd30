"""A zoo RTSP camera process on GStreamer's RTSP server library, with a real camera's traits.

    python -m tests.zoo.rtsp_camera --port 8560 --path /cam --spec '<CameraSpec JSON>' \
        [--log sent.log]

Prints `READY <url>` once listening. One shared media per mount (all readers see the same
frames); it replays pre-encoded units (tests.zoo.clip) through appsrc, encoding nothing.
`--path` may be given several times (bench/record.py: N cameras in one process): each mount
is an independent camera with its own sequence numbers, all replaying the same clip.
Reads commands on stdin: `stall SECONDS` stops sending on every live media for that long
while the RTSP session stays open.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

import gi

from streamwarden.gst.init import GLib, GstRtspServer
from tests.zoo.clip import Clip, load_clip
from tests.zoo.feeder import Feeder, SentLog
from tests.zoo.rtsp_elements import media_bin
from tests.zoo.spec import CameraSpec, RtspBehaviour

gi.require_version("GstRtsp", "1.0")
from gi.repository import GstRtsp  # noqa: E402


class ZooFactory(GstRtspServer.RTSPMediaFactory):
    """Builds the fault-carrying pipeline and starts a feeder per media."""

    def __init__(self, clip: Clip, behaviour: RtspBehaviour, sent: SentLog):
        super().__init__()
        self._clip, self._behaviour, self._sent = clip, behaviour, sent
        self.feeders: list[Feeder] = []
        self.set_shared(True)
        lower = GstRtsp.RTSPLowerTrans
        protocols = {"tcp": lower.TCP, "udp": lower.UDP | lower.UDP_MCAST}
        if behaviour.transport in protocols:
            self.set_protocols(protocols[behaviour.transport])
        self.connect("media-configure", self._on_media_configure)

    def do_create_element(self, url):
        return media_bin(self._clip, self._behaviour)

    def _on_media_configure(self, _factory, media) -> None:
        element = media.get_element()
        pipeline = element.get_parent()
        for sink in pipeline.iterate_recurse():
            _unsync(pipeline, None, sink)
        pipeline.connect("deep-element-added", _unsync)
        sources = [element.get_by_name("vsrc"), element.get_by_name("asrc")]
        feeder = Feeder(self._clip, self._behaviour, sources, self._sent)
        self.feeders.append(feeder)

        def unprepared(*_args) -> None:
            feeder.stop()
            self.feeders.remove(feeder)

        media.connect("unprepared", unprepared)
        feeder.start()


def _unsync(_bin, _sub_bin, element) -> None:
    """The server's sinks send each packet as it comes: the feeder already paces by wall
    time, and faulty timestamps (a jump, drift) must not hold packets back."""
    if element.find_property("sync") is not None and element.find_property("async"):
        element.set_property("sync", False)
        # The server turns sync on when it configures its sinks: turn it off again.
        element.connect("notify::sync", lambda e, _p: e.get_property("sync")
                        and e.set_property("sync", False))


class SingleClientGate:
    """Refuses (453 Not Enough Bandwidth) any client while another one is connected."""

    def __init__(self, server: GstRtspServer.RTSPServer):
        self._clients: list[object] = []
        server.connect("client-connected", self._on_connected)

    def _on_connected(self, _server, client) -> None:
        self._clients.append(client)
        client.connect("closed", lambda c: self._clients.remove(c))
        for signal_name in ("pre-describe-request", "pre-setup-request", "pre-play-request"):
            client.connect(signal_name, self._check)

    def _check(self, client, _context):
        status = GstRtsp.RTSPStatusCode
        first = self._clients[0] if self._clients else client
        return status.OK if first is client else status.NOT_ENOUGH_BANDWIDTH


def _control(factories: list[ZooFactory]) -> None:
    """stdin commands from the test: `stall SECONDS` (every mount)."""
    for line in sys.stdin:
        words = line.split()
        if len(words) == 2 and words[0] == "stall":
            for feeder in [f for factory in factories for f in factory.feeders]:
                feeder.stall(float(words[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a zoo RTSP camera (no live encode).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", action="append",
                        help="mount path, repeatable: one independent camera each (default /cam)")
    parser.add_argument("--spec", required=True, help="CameraSpec as JSON")
    parser.add_argument("--log", help="file for one line per video unit sent")
    parser.add_argument("--first-sequence", type=int, default=0,
                        help="first stamp number (a restarted camera goes on counting)")
    args = parser.parse_args(argv)
    paths = args.path or ["/cam"]
    if args.log and len(paths) > 1:
        parser.error("--log logs one mount's frames: give a single --path with it")
    spec = CameraSpec.from_json(args.spec)
    handle = open(args.log, "a") if args.log else None  # noqa: SIM115 (lives with the process)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    clip = load_clip(spec.media)
    factories = [ZooFactory(clip, spec.rtsp, SentLog(handle, args.first_sequence))
                 for _ in paths]
    for path, factory in zip(paths, factories, strict=True):
        server.get_mount_points().add_factory(path, factory)
    gate = SingleClientGate(server) if spec.rtsp.single_client else None  # noqa: F841
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        raise SystemExit(f"zoo camera could not listen on {args.host}:{args.port}")
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    threading.Thread(target=_control, args=(factories,), name="zoo-control", daemon=True).start()
    print(f"READY rtsp://{args.host}:{args.port}{paths[0]}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
