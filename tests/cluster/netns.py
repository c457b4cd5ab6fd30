"""A network namespace for one node of the partition test, joined to the test's own namespace
by two veth pairs: one carries the node's database traffic, the other its cameras and its API.
Cutting the database link (`ip link set ... down`) partitions that node from PostgreSQL while it
still sees its cameras and answers the test, which is the split-brain case fencing is for.

Nothing here reaches beyond the machine: the addresses are private /30s that exist only on the
two veth pairs, and PostgreSQL is still bound to 127.0.0.1 only; a small TCP relay on the
database link's host end carries the namespace's connections to it.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import subprocess
import threading
import uuid
from dataclasses import dataclass, field


class NetnsUnavailableError(RuntimeError):
    """`ip netns` or veth pairs are not permitted here (not root, no CAP_NET_ADMIN, a sandbox)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10,
                          check=check)


def _free_subnets() -> tuple[int, int]:
    """Two third octets of 10.213.x.0/30 that no route on this machine uses."""
    used = _ip("-4", "route", "show", "table", "all").stdout
    choices = [x for x in range(1, 250) if f"10.213.{x}." not in used]
    if len(choices) < 2:
        raise NetnsUnavailableError("no free 10.213.x.0/30 subnet for the veth pairs")
    a, b = random.sample(choices, 2)
    return a, b


@dataclass
class Link:
    """One veth pair: `host` end in the test's namespace, `peer` end in the node's."""

    host_if: str
    host_ip: str
    peer_ip: str

    def down(self) -> None:
        _ip("link", "set", self.host_if, "down")

    def up(self) -> None:
        _ip("link", "set", self.host_if, "up")


@dataclass
class Namespace:
    name: str
    database: Link
    media: Link   # cameras, and the node's API for the test and the other nodes
    _relays: list[Relay] = field(default_factory=list)

    def command(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def relay(self, target_port: int) -> int:
        """Carry TCP from the database link's host end to 127.0.0.1:`target_port`."""
        relay = Relay(self.database.host_ip, target_port)
        self._relays.append(relay.start())
        return relay.port

    def remove(self) -> None:
        for relay in self._relays:
            relay.stop()
        _ip("netns", "del", self.name, check=False)  # takes the peer ends (and pairs) along
        for link in (self.database, self.media):
            _ip("link", "del", link.host_if, check=False)


def create_namespace() -> Namespace:
    """The namespace, both links up, loopback up inside. Raises NetnsUnavailableError where
    the kernel or the sandbox refuses (the caller skips); a half-made one is removed."""
    tag = uuid.uuid4().hex[:6]
    try:
        a, b = _free_subnets()
    except (subprocess.CalledProcessError, OSError) as exc:
        raise NetnsUnavailableError(f"`ip` cannot be used here: {exc}") from exc
    ns = Namespace(f"swpart-{tag}", Link(f"swdb{tag}", f"10.213.{a}.1", f"10.213.{a}.2"),
                   Link(f"swmd{tag}", f"10.213.{b}.1", f"10.213.{b}.2"))
    try:
        _ip("netns", "add", ns.name)
        _ip("netns", "exec", ns.name, "ip", "link", "set", "lo", "up")
        for link in (ns.database, ns.media):
            peer = f"{link.host_if}p"
            _ip("link", "add", link.host_if, "type", "veth", "peer", "name", peer)
            _ip("link", "set", peer, "netns", ns.name)
            _ip("addr", "add", f"{link.host_ip}/30", "dev", link.host_if)
            _ip("netns", "exec", ns.name, "ip", "addr", "add", f"{link.peer_ip}/30", "dev", peer)
            _ip("netns", "exec", ns.name, "ip", "link", "set", peer, "up")
            link.up()
    except (subprocess.CalledProcessError, OSError) as exc:
        ns.remove()
        why = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        raise NetnsUnavailableError(f"network namespaces are not permitted here: {why}") from exc
    return ns


class Relay:
    """A TCP relay thread. Its sockets toward the namespace carry a short TCP user timeout and
    keepalives, as a real PostgreSQL server's would: when the link is cut, the relay notices the
    dead peer within seconds and closes its side to PostgreSQL, so a transaction the partitioned
    node had open (row locks on its leases) is rolled back instead of blocking the claims."""

    def __init__(self, host: str, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.peers: dict[socket.socket, socket.socket] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-relay", daemon=True)

    def start(self) -> Relay:
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in [self.listener, *self.peers]:
            with contextlib.suppress(OSError):
                sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.selector.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self.listener:
                    self._accept()
                else:
                    self._forward(sock)

    def _accept(self) -> None:
        with contextlib.suppress(BlockingIOError):
            outside, _ = self.listener.accept()
            outside.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            outside.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
            outside.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
            outside.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 2)
            outside.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 2000)
            try:
                inside = socket.create_connection(("127.0.0.1", self.target_port), timeout=3)
            except OSError:
                outside.close()
                return
            for sock in (outside, inside):
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ)
            self.peers[outside], self.peers[inside] = inside, outside

    def _forward(self, sock: socket.socket) -> None:
        other = self.peers.get(sock)
        try:
            data = sock.recv(65536)
            if data and other is not None:
                other.setblocking(True)
                other.settimeout(3)
                other.sendall(data)
                other.setblocking(False)
                return
        except OSError:
            pass
        self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        for s in (sock, self.peers.pop(sock, None)):
            if s is None:
                continue
            self.peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.selector.unregister(s)
            with contextlib.suppress(OSError):
                s.close()
