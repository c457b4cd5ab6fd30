"""`GET /streams/{id}/timeline`: a stream's recordings as covered spans and explained gaps.

The rules are recording/timeline.py's; this router validates the range (as /recordings
does), asks the database thread for the timeline and shapes the answer. A range reaching
past now ends at now: there is no footage of the future to explain.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query

from streamwarden.api.access import requires
from streamwarden.api.errors import ApiError
from streamwarden.api.params import (
    StreamIdPath,
    from_timestamp,
    running_stream,
    to_timestamp_or_none,
)
from streamwarden.api.schemas import (
    ERRORS,
    RecordingTimeline,
    TimelineGap,
    TimelineSegment,
    TimelineSpan,
)
from streamwarden.recording.timeline import Segment, Timeline
from streamwarden.users.permissions import Action

if TYPE_CHECKING:
    from streamwarden.service import Service

DEFAULT_S = 24 * 3600.0
MAX_S = 7 * 24 * 3600.0
_WHEN = "ISO 8601; UTC if no zone"


def timeline_range(start: float | None, end: float | None, now: float) -> tuple[float, float]:
    """[start, end) from the query: the last 24 h by default, never past now; a 422 for a
    range that is empty, in the future or longer than 7 days."""
    end = now if end is None else end
    start = end - DEFAULT_S if start is None else start
    if end <= start:
        raise ApiError(422, "invalid_range", "end must be after start")
    if end - start > MAX_S:
        raise ApiError(422, "invalid_range", "a timeline can cover at most 7 days")
    if start >= now:
        raise ApiError(422, "invalid_range", "start is in the future")
    return start, min(end, now)


def _segment(segment: Segment) -> TimelineSegment:
    return TimelineSegment(id=segment.id, start=from_timestamp(segment.start),
                           end=from_timestamp(segment.end),
                           status="recording" if segment.end is None else segment.status,
                           url=f"/recordings/{segment.id}/file")


def timeline_view(stream_id: str, timeline: Timeline) -> RecordingTimeline:
    ts = from_timestamp
    return RecordingTimeline(
        stream_id=stream_id, start=ts(timeline.start), end=ts(timeline.end),
        spans=[TimelineSpan(start=ts(s.start), end=ts(s.end),
                            segments=[_segment(seg) for seg in s.segments])
               for s in timeline.spans],
        gaps=[TimelineGap(start=ts(g.start), end=ts(g.end), seconds=round(g.seconds, 3),
                          reason=g.reason)
              for g in timeline.gaps])


def create_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["recording"])

    @router.get("/streams/{stream_id}/timeline", response_model=RecordingTimeline,
                responses=ERRORS, dependencies=[requires(Action.RECORDINGS)])
    async def timeline(
        stream_id: StreamIdPath,
        start: Annotated[datetime | None, Query(description=f"{_WHEN}; default end - 24 h")]
        = None,
        end: Annotated[datetime | None, Query(description=f"{_WHEN}; default now")] = None,
    ) -> RecordingTimeline:
        """What was recorded between start and end: covered spans (contiguous segments, with
        their URLs) and gaps, each with its reason and exact bounds, tiling the range."""
        running_stream(service.manager, stream_id)
        now = time.time()
        start_ts, end_ts = timeline_range(to_timestamp_or_none(start),
                                          to_timestamp_or_none(end), now)
        result = await service.db.run(service.timeline.timeline, stream_id, start_ts, end_ts,
                                      now)
        return timeline_view(stream_id, result)

    return router
