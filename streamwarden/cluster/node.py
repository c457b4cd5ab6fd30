"""A node's runtime: one thread that keeps this node's part of the cluster.

Every lease/3 it heartbeats and renews all its leases in one UPDATE (the database's clock
judges them), reads the snapshot, lets `decide` say what to do, and does it: claims orphans
(an atomic UPDATE that one node wins, incrementing the camera's fence), starts and stops
cameras in the local manager, offers cameras for planned moves and finishes them, then sends
new index rows to the cluster index (replicate.py). Pipeline changes are handed to the asyncio
loop (the manager's side) and never waited for here, so a slow camera never delays a renewal.

Losing the database is not a reason to stop a camera: the node keeps recording into its own
files and index, and when the database answers again it renews (nobody could claim in the
meantime: a restarted database opens claims only one lease after it started) or learns that
another node took a camera, and stops it then. So a paused (SIGSTOP) or cut-off node stops
its lost cameras in the first renewal after it comes back, and its late index rows carry a
fence that is no longer current and are refused.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamwarden.cluster.budget import MoveBudget
from streamwarden.cluster.catalog import Codec, Entry
from streamwarden.cluster.decide import Local, Steps, decide
from streamwarden.cluster.replicate import Replicator
from streamwarden.cluster.store import ClusterStore, CycleResult, StoreUnavailableError
from streamwarden.config.diff import RESTART_KEYS
from streamwarden.config.model import ClusterSection, StreamConfig
from streamwarden.db import Database
from streamwarden.ingest.supervisor import StreamState
from streamwarden.manager import StreamExistsError, StreamManager, StreamNotFoundError

log = logging.getLogger("streamwarden.cluster")

SETTLE_LEASES = 1.5  # after start-up, claims wait this many leases


@dataclass
class NodeStatus:
    """What `GET /cluster` shows about this node beyond its database row."""

    database: str = "connecting"   # connecting | up | down
    down_since: float | None = None
    claims: int = 0
    lost: int = 0
    moves: int = 0


@dataclass(frozen=True)
class Owner:
    node_id: str | None
    url: str | None
    alive: bool


class ClusterNode:
    def __init__(self, section: ClusterSection, url: str, manager: StreamManager,
                 db: Database, key_path: Path, views: Callable[[list[str]], dict[str, Any]],
                 file_streams: list[StreamConfig]):
        self.section = section
        self.url = url
        self.manager = manager
        self.store = ClusterStore(section.database, section.node_id, section.lease)
        self.codec = Codec.open(key_path)
        self.views = views
        self.file_streams = file_streams
        self.budget = MoveBudget(section.moves_per_minute)
        self.replicator = Replicator(db, self.store, self.fence_of)
        self.db = db
        self.status = NodeStatus()
        self.held: dict[str, int] = {}        # stream id -> fence, as of the last renewal
        self.last_fence: dict[str, int] = {}  # ...and every fence this node ever held
        self.warming: frozenset[str] = frozenset()  # offered to this node, not yet given
        self.catalog: dict[str, Entry] = {}
        self.directory: dict[str, Owner] = {}
        self.node_urls: dict[str, tuple[str, bool]] = {}
        # the API's own connection (the loop's is never shared with request threads)
        self.api_store = ClusterStore(section.database, section.node_id, section.lease)
        self.catalog_version = -1
        self.draining = False
        self._set_up = False
        self._busy: dict[str, concurrent.futures.Future] = {}
        self._handing: dict[str, tuple[str, concurrent.futures.Future]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu = (time.monotonic(), time.process_time())
        self._settled_at = float("inf")

    @property
    def node_id(self) -> str:
        return self.section.node_id

    @property
    def interval(self) -> float:
        return self.section.lease / 3

    def wake(self) -> None:
        """Run the next step now (the camera list changed here)."""
        self._wake.set()

    def fence_of(self, stream_id: str) -> int | None:
        """The fence this node's index rows of a camera go out with: the one it holds; none
        while it warms the camera up for a move to it (the rows wait for the transfer's new
        fence: an older fence of its own, from holding the camera before, would have them
        refused); else the last it held (late rows, refused if another node took over)."""
        if stream_id in self.held:
            return self.held[stream_id]
        if stream_id in self.warming:
            return None
        return self.last_fence.get(stream_id)

    # ---- lifecycle (asyncio side) ----------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="cluster-node", daemon=True)
        self._thread.start()

    async def drain(self) -> None:
        """SIGTERM: take nothing new, hand every camera to another node (each one ready
        before this one stops it), release what is left at `drain_timeout`, mark the node
        down, stop the thread."""
        self.draining = True
        self._wake.set()
        deadline = time.monotonic() + self.section.drain_timeout
        while time.monotonic() < deadline and (self.held or self._handing):
            await asyncio.sleep(0.1)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10.0)
        left = sorted(self.held)
        try:
            await asyncio.to_thread(self._final_release)
        except StoreUnavailableError:
            log.warning("cluster database unavailable at shutdown; %d camera(s) will be "
                        "claimed when their leases end", len(left))
            return
        if left:
            log.warning("released %d camera(s) no node took over within %gs: %s", len(left),
                        self.section.drain_timeout, ", ".join(left))

    def _final_release(self) -> None:
        with contextlib.suppress(StoreUnavailableError):
            self.replicator.push()
        self.store.release()
        self.store.node_down()
        self.store.close_quietly()

    # ---- the loop (cluster-node thread) ----------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.step()
            except Exception:  # one bad step must not end the node's part in the cluster
                log.exception("cluster step failed")
            self._wake.wait(max(0.05, self.interval - (time.monotonic() - began)))
            self._wake.clear()

    def step(self) -> None:
        try:
            if not self._set_up:
                self._setup()
            result = self.store.cycle(self.url, self.section.capacity, self.draining,
                                      self._load(), self._views())
        except StoreUnavailableError as exc:
            self._database_down(str(exc))
            return
        self._database_up()
        self._renewed(result)
        self.warming = frozenset(lease.stream_id for lease in result.snapshot.leases
                                 if lease.handoff_to == self.node_id
                                 and lease.owner != self.node_id)
        self._directory(result)
        if result.catalog_version != self.catalog_version:
            self._read_catalog()
        given = self._finish_handoffs()
        steps = decide(result.snapshot, self._local())
        self._carry_out(steps, given)
        try:
            self.replicator.push()
        except StoreUnavailableError as exc:
            self._database_down(str(exc))

    def _setup(self) -> None:
        """Once the database answers: the schema, then the config file's streams into the
        camera list (the file wins for the ids it names)."""
        self.store.create_schema()
        for stream in self.file_streams:
            sealed, digest = self.codec.seal(stream)
            if self.store.put_stream(stream.id, sealed, digest, "config"):
                log.info("stream %s from the config file written to the cluster's camera list",
                         stream.id, extra={"stream_id": stream.id})
        self._set_up = True
        # Nodes started together see each other's heartbeats before anyone claims, so a
        # cluster's cold start places every camera once instead of moving most of them.
        self._settled_at = time.monotonic() + SETTLE_LEASES * self.section.lease

    async def load_file_streams(self, streams: list[StreamConfig]) -> tuple[str, ...]:
        """A config reload in a cluster: the file's streams written to the camera list (the
        owners apply them); streams the file named before and no longer does are removed."""
        def write() -> tuple[str, ...]:
            done = []
            for stream in streams:
                if self.store.put_stream(stream.id, *self.codec.seal(stream), "config"):
                    done.append(f"{stream.id}: written to the cluster's camera list")
            named = {s.id for s in streams}
            for old in self.file_streams:
                if old.id not in named and self.store.delete_stream(old.id):
                    done.append(f"{old.id}: removed from the cluster's camera list")
            self.file_streams = list(streams)
            return tuple(done)

        changes = await asyncio.to_thread(write)
        self.wake()
        return changes

    def _database_down(self, why: str) -> None:
        if self.status.database != "down":
            log.warning("cluster database unavailable (%s); cameras keep recording here",
                        why, extra={"event": "cluster_db_down"})
            self.status.down_since = time.time()
        self.status.database = "down"

    def _database_up(self) -> None:
        if self.status.database == "down":
            log.info("cluster database available again", extra={"event": "cluster_db_up"})
        self.status.database, self.status.down_since = "up", None

    def _renewed(self, result: CycleResult) -> None:
        lost = set(self.held) - set(result.renewed) - {s for s, _ in self._handing.items()}
        for stream_id in sorted(lost):
            self.status.lost += 1
            log.warning("stream %s: this node's lease was taken by another node; stopping it "
                        "here", stream_id, extra={"stream_id": stream_id, "event": "lease_lost"})
        self.held = dict(result.renewed)
        self.last_fence.update(self.held)

    def _directory(self, result: CycleResult) -> None:
        """Who owns what, for the API's redirects (read without asking the database)."""
        nodes = {n.node_id: n for n in result.snapshot.nodes}
        directory = {}
        for lease in result.snapshot.leases:
            node = nodes.get(lease.owner or "")
            alive = node is not None and node.alive and not lease.expired
            directory[lease.stream_id] = Owner(lease.owner, node.url if node else None, alive)
        self.directory = directory
        self.node_urls = {n.node_id: (n.url, n.alive) for n in result.snapshot.nodes}

    def owner(self, stream_id: str) -> Owner | None:
        return self.directory.get(stream_id)

    def _read_catalog(self) -> None:
        version, rows = self.store.catalog()
        catalog = {}
        for row in rows:
            entry = self.codec.open_row(row)
            if entry is not None:
                catalog[row.stream_id] = entry
        self.catalog, self.catalog_version = catalog, version
        for stream in self.manager.all():
            entry = catalog.get(stream.id)
            if entry is not None and entry.config != stream.config and stream.id not in self._busy:
                self._spawn(stream.id, self._apply(entry))

    def _local(self) -> Local:
        running = frozenset(s.id for s in self.manager.all()) | frozenset(self._busy)
        return Local(running=running, fit=frozenset(self._fit()),
                     capacity=self.section.capacity, draining=self.draining,
                     settling=time.monotonic() < self._settled_at,
                     moves_allowed=self.budget.available(time.monotonic()),
                     handoff_timeout=max(30.0, 4 * self.section.lease))

    def _fit(self) -> list[str]:
        """Streams that stream, and record if they should (a segment is open: it began at a
        keyframe, from the ring): ready to take a camera over."""
        fit = []
        for stream in self.manager.all():
            if stream.supervisor.state is not StreamState.STREAMING:
                continue
            segments = sum(int(c.stats().get("segments") or 0) for c in stream.consumers())
            if segments > 0 or not stream.config.enable_recording:
                fit.append(stream.id)
        return fit

    # ---- carrying out ----------------------------------------------------------------------

    def _carry_out(self, steps: Steps, given: set[str]) -> None:
        """Do what `decide` said, except for cameras with a change in flight or just given
        away (the snapshot predates that)."""
        skip = set(self._busy) | set(self._handing) | given
        for stream_id in steps.stop:
            if stream_id not in skip:
                self._spawn(stream_id, self._remove(stream_id))
        for stream_id in steps.cancel:
            self.store.cancel(stream_id)
        steps.start += [sid for sid in steps.claim if self._claim(sid)]
        for stream_id in [*steps.start, *steps.warm]:
            entry = self.catalog.get(stream_id)
            if stream_id not in skip and entry is not None:
                self._spawn(stream_id, self._add(entry))
        for stream_id in steps.ready:
            self.store.mark_ready(stream_id)
        self._moves(steps, skip)

    def _claim(self, stream_id: str) -> bool:
        fence = self.store.claim(stream_id)
        if fence is None:
            return False
        self.held[stream_id] = self.last_fence[stream_id] = fence
        self.status.claims += 1
        log.info("stream %s claimed (fence %d)", stream_id, fence,
                 extra={"stream_id": stream_id, "event": "claimed", "fence": fence})
        return True

    def _moves(self, steps: Steps, skip: set[str]) -> None:
        for stream_id, to in steps.offer:
            if self.store.offer(stream_id, to):
                self.budget.spend(time.monotonic())
                log.info("stream %s offered to node %s", stream_id, to,
                         extra={"stream_id": stream_id, "event": "handoff_offered", "to": to})
        for stream_id, to in steps.transfer:
            if stream_id not in skip:
                future = self._spawn(stream_id, self._remove(stream_id))
                self._handing[stream_id] = (to, future)

    def _finish_handoffs(self) -> set[str]:
        """The local copy of a handed-over camera is stopped (its segment closed): send its
        index rows under this node's fence, then give the camera (fence + 1)."""
        given: set[str] = set()
        for stream_id, (to, future) in list(self._handing.items()):
            if not future.done():
                continue
            del self._handing[stream_id]
            self.db.call(lambda: None)  # the closed segment's row is written by now
            self.replicator.push(stream_id)
            fence = self.store.transfer(stream_id, to)
            given.add(stream_id)
            if fence is not None:
                self.held.pop(stream_id, None)
                self.status.moves += 1
                log.info("stream %s handed over to node %s (fence %d)", stream_id, to, fence,
                         extra={"stream_id": stream_id, "event": "handed_over", "to": to})
        return given

    def _spawn(self, stream_id: str,
               coro: Coroutine[Any, Any, None]) -> concurrent.futures.Future:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        self._busy[stream_id] = future
        future.add_done_callback(lambda f: self._done(stream_id, f))
        return future

    def _done(self, stream_id: str, future: concurrent.futures.Future) -> None:
        if self._busy.get(stream_id) is future:
            del self._busy[stream_id]
        if not future.cancelled() and (exc := future.exception()) is not None:
            log.error("stream %s: cluster change failed: %s", stream_id, exc,
                      extra={"stream_id": stream_id})

    async def _add(self, entry: Entry) -> None:
        with contextlib.suppress(StreamExistsError):
            await self.manager.add(entry.config, entry.source)

    async def _remove(self, stream_id: str) -> None:
        with contextlib.suppress(StreamNotFoundError):
            await self.manager.remove(stream_id)

    async def _apply(self, entry: Entry) -> None:
        """A changed camera-list entry for a stream running here: restart for a new source,
        in place otherwise (as a PATCH or a config reload would)."""
        stream = self.manager.get(entry.config.id)
        if any(getattr(entry.config, k, None) != getattr(stream.config, k, None)
               for k in RESTART_KEYS):
            await self.manager.replace(entry.config, entry.source)
        else:
            await self.manager.change(entry.config.id, entry.config)

    # ---- what the database shows of this node ----------------------------------------------

    def _views(self) -> dict[str, Any]:
        return self.views([sid for sid in self.held if sid in self.manager.streams])

    def _load(self) -> dict[str, Any]:
        wall, cpu = time.monotonic(), time.process_time()
        last_wall, last_cpu = self._cpu
        self._cpu = (wall, cpu)
        share = (cpu - last_cpu) / (wall - last_wall) if wall > last_wall else 0.0
        return {"cpu_percent": round(100 * share, 1), "load1": round(os.getloadavg()[0], 2),
                "streams": len(self.manager.all()),
                "index_rows_accepted": self.replicator.accepted,
                "index_rows_rejected": self.replicator.rejected}
