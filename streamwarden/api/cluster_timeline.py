"""`GET /streams/{id}/timeline` in a cluster: one timeline of the camera across every node that
held it, from the cluster index (segments, holds, the nodes' timeline facts), answered by any
node. A camera that moved shows its handover in place: no gap for a planned move (both nodes
recorded across it), `service_not_running` for the seconds no node held it after a failure.
The rules are the single node's (recording/timeline.py), the facts cluster/timeline.py's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from streamwarden.api.access import requires
from streamwarden.api.params import StreamIdPath, to_timestamp_or_none
from streamwarden.api.schemas import ERRORS, RecordingTimeline
from streamwarden.api.timeline import timeline_range, timeline_view
from streamwarden.cluster.store import ClusterStore
from streamwarden.cluster.timeline import Hold, NodeFact, cluster_facts
from streamwarden.recording.timeline import Facts, Segment, build
from streamwarden.users.permissions import Action

_WHEN = "ISO 8601; UTC if no zone"

def load(store: ClusterStore, stream_id: str, start: float, end: float, now: float) -> Facts:
    """The camera's facts touching [start, end] from the cluster index (a request thread)."""
    args = {"sid": stream_id, "start": start, "end": end}
    segments = [Segment(int(i), s, e if status != "recording" else None, status)
                for i, s, e, status in store.execute(
                    "SELECT id, start_ts, end_ts, status FROM cluster_recordings WHERE "
                    "stream_id = %(sid)s AND start_ts <= %(end)s AND (end_ts IS NULL OR "
                    "end_ts >= %(start)s) ORDER BY start_ts, id", args)]
    holds = [Hold(*row) for row in store.execute(
        "SELECT h.node_id, h.start_ts, CASE WHEN o.owner = h.node_id AND o.fence = h.fence AND "
        "o.expires > now() THEN NULL ELSE h.end_ts END FROM cluster_holds h LEFT JOIN "
        "ownership o USING (stream_id) WHERE h.stream_id = %(sid)s AND h.start_ts <= %(end)s "
        "AND (h.end_ts >= %(start)s OR (o.owner = h.node_id AND o.fence = h.fence)) "
        "ORDER BY h.start_ts", args)]
    facts = [NodeFact(*row) for row in store.execute(
        "SELECT node_id, source, kind, start_ts, end_ts FROM cluster_facts WHERE stream_id = "
        "%(sid)s AND start_ts <= %(end)s AND (end_ts IS NULL OR end_ts >= %(start)s) "
        "ORDER BY start_ts", args)]
    return cluster_facts(segments, holds, facts, now)


def add_route(router: APIRouter, store: ClusterStore,
              entry: Callable[[str], Any], call: Callable[..., Any]) -> None:
    @router.get("/streams/{stream_id}/timeline", response_model=RecordingTimeline,
                responses=ERRORS, dependencies=[requires(Action.RECORDINGS)])
    async def timeline(
        stream_id: StreamIdPath,
        start: Annotated[datetime | None, Query(description=f"{_WHEN}; default end - 24 h")]
        = None,
        end: Annotated[datetime | None, Query(description=f"{_WHEN}; default now")] = None,
    ) -> RecordingTimeline:
        """What was recorded between start and end on any node: covered spans (contiguous
        segments, with their URLs) and gaps, each with its reason and exact bounds."""
        await entry(stream_id)
        now = time.time()
        start_ts, end_ts = timeline_range(to_timestamp_or_none(start),
                                          to_timestamp_or_none(end), now)
        facts = await call(load, store, stream_id, start_ts, end_ts, now)
        return timeline_view(stream_id, build(facts, start_ts, min(end_ts, now), now))
