"""What the cluster's routes answer: the node list and the cluster-wide reads of streams,
health, recordings and events, shaped from PostgreSQL rows (plain functions, no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from streamwarden.api.events import event_from_row
from streamwarden.api.params import from_timestamp
from streamwarden.api.schemas import EventView, HealthEntry, Recording, StreamView
from streamwarden.config.model import SourceSettings, StreamConfig
from streamwarden.db import EventRow
from streamwarden.recording.retention_rule import Padding
from streamwarden.uris import DisplayUri


class ClusterNodeView(BaseModel):
    node_id: str
    url: str
    status: Literal["up", "leaving", "down"]
    lease_age_s: float          # seconds since its last heartbeat (database clock)
    cameras: int                # cameras it holds a live lease on
    capacity: int | None
    cpu_percent: float | None   # of one core, this process, over its last renewal interval
    load1: float | None         # the machine's 1-minute load average
    started_at: datetime


class ClusterView(BaseModel):
    node_id: str                # the node that answered
    database: Literal["connecting", "up", "down"]
    lease_s: float
    nodes: list[ClusterNodeView]
    held: dict[str, int]        # this node's cameras and the fence it holds each under
    running: list[str]          # streams running here (owned, or warming for a handoff)
    index_rows_accepted: int
    index_rows_rejected: int    # refused by the cluster for a stale fence


def node_view(row: dict[str, Any]) -> ClusterNodeView:
    load = row["load"] or {}
    status = "down" if not row["alive"] else "leaving" if row["leaving"] else "up"
    return ClusterNodeView(
        node_id=row["node_id"], url=row["url"], status=status,
        lease_age_s=round(row["lease_age_s"], 2), cameras=row["cameras"],
        capacity=row["capacity"], cpu_percent=load.get("cpu_percent"),
        load1=load.get("load1"), started_at=row["started_at"])


def _idle_health(stream_id: str) -> HealthEntry:
    return HealthEntry(id=stream_id, state="stopped", is_healthy=False, retry_count=0,
                       buffering=0, last_frame_age_s=None, fps=0.0, bitrate_kbps=0.0,
                       last_retry_reason=None, last_error=None, recording=False,
                       recording_error=None)


def remote_view(config: StreamConfig, source: str, defaults: SourceSettings,
                owner: str | None, stored: dict[str, Any] | None) -> StreamView:
    """A stream that runs on another node (its owner's last view from the database), or on
    none (no live owner: stopped). Config fields come from the camera list, so a PATCH shows
    at once."""
    if stored is not None and owner is not None:
        view = StreamView.model_validate({**stored, "owner": owner})
        return view.model_copy(update={
            "uri": DisplayUri.of(config.uri).text, "enable_recording": config.enable_recording,
            "enable_inference": config.enable_inference})
    return StreamView(
        id=config.id, source="api" if source == "api" else "config",
        uri=DisplayUri.of(config.uri).text, enable_inference=config.enable_inference,
        enable_recording=config.enable_recording, recording=False,
        settings=config.settings(defaults), health=_idle_health(config.id),
        statistics={"frames": 0, "keyframes": 0, "bytes": 0, "audio_frames": 0,
                    "video_codec": None, "width": None, "height": None, "framerate": None,
                    "audio_codec": None, "consumers": []},
        owner=owner)


RECORDING_COLUMNS = ("id, node_id, stream_id, start_ts, end_ts, duration, bytes, reason, "
                     "status")


def recording_view(row: tuple) -> Recording:
    rid, node, stream_id, start, end, duration, size, reason, status = row
    return Recording(id=rid, stream_id=stream_id, start=from_timestamp(start),
                     end=from_timestamp(end), duration=duration, bytes=size, reason=reason,
                     status=status, url=f"/recordings/{rid}/file", node=node)


EVENT_COLUMNS = ("e.id, e.stream_id, e.label, e.start_ts, e.end_ts, e.confidence, e.box, "
                 "e.detections, e.model, e.pts, e.has_snapshot, e.object_id, e.zones, e.path, "
                 "e.stationary, e.active, e.local_id, n.url")


def event_view(row: tuple, padding: Callable[[str], Padding]) -> EventView:
    """As the single node shows its events (footage padded as this node's settings say),
    the snapshot on the node that holds it."""
    *fields, local_id, url = row
    event = EventRow(*fields)
    view = event_from_row(event, padding(event.stream_id))
    snapshot = f"{url}/events/{local_id}/snapshot.jpg" if view.snapshot_url and url else None
    return view.model_copy(update={"snapshot_url": snapshot})
