"""In a cluster, requests that need the camera or its files go to the node that has them.

ASGI middleware, installed only when `[cluster]` is configured, so no route changes:
`/streams/{id}/record|snapshot.jpg|mjpeg|live.mp4|clip` of a camera this node does
not own are answered 307 with the owner's URL (same path and query), or 503
`owner_unavailable` when the camera has no live owner; `/recordings/{id}/file` (ids are the
cluster index's) is served here when this node holds the file (the path is rewritten to the
local index's id), redirected to the node that holds it otherwise, 503 when that node is
down. Owners come from the node's last renewal (no database call per request); files from
one indexed query. A WebSocket (live view) cannot be redirected by browsers: it is refused
with the same status and the owner's URL in `Location`.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from streamwarden.api.access import CALLER
from streamwarden.api.errors import error_response, refuse_websocket
from streamwarden.users.gate import Caller

if TYPE_CHECKING:
    from streamwarden.cluster.node import ClusterNode

_OWNER_ONLY = re.compile(
    r"^/streams/([A-Za-z0-9_-]{1,64})/(record|snapshot\.jpg|mjpeg|live\.mp4|clip)$")
_FILE = re.compile(r"^/recordings/(\d{1,18})/file$")
# the same routes as the OpenAPI document names them
ROUTED_PATHS = frozenset({
    *(f"/streams/{{stream_id}}/{tail}" for tail in
      ("record", "snapshot.jpg", "mjpeg", "live.mp4", "clip")),
    "/recordings/{rec_id}/file"})
_ERROR_BODY = {"content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/ErrorBody"}}}}


def document(schema: dict) -> dict:
    """What this middleware (and the cluster's database) adds to the routes' answers, in the
    OpenAPI document of a clustered node: 307 to the owner and 503 `owner_unavailable` on the
    routes it redirects; 503 `database_unavailable` on the cluster's own routes."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            if path in ROUTED_PATHS:
                answers["307"] = {
                    "description": "Held by another node: `Location` is the same request there",
                    "headers": {"Location": {"schema": {"type": "string"}}}}
                answers["503"] = {"description": "The node holding it is down "
                                  "(`owner_unavailable`)", **_ERROR_BODY}
            elif "cluster" in operation.get("tags", ()):
                answers["503"] = {"description": "The cluster's database cannot be reached "
                                  "(`database_unavailable`)", **_ERROR_BODY}
    return schema


class OwnerRouting:
    def __init__(self, app: ASGIApp, node: ClusterNode):
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if (match := _OWNER_ONLY.match(path)) and _sees(scope, match.group(1)):
            target = self._stream_target(match.group(1))
        elif match := _FILE.match(path):
            target = await self._file_target(scope, int(match.group(1)))
        else:
            target = None
        if target is None:
            await self.app(scope, receive, send)
        else:
            await _answer(scope, receive, send, *target)

    def _stream_target(self, stream_id: str) -> tuple[int, str, str] | None:
        """None: serve here (owned here, or unknown: the route answers its 404)."""
        node = self.node
        if stream_id in node.held:
            return None
        owner = node.owner(stream_id)
        if owner is None:
            return None
        if owner.alive and owner.url and owner.node_id != node.node_id:
            return 307, owner.url, f"stream {stream_id!r} is owned by node {owner.node_id}"
        who = f"node {owner.node_id}" if owner.node_id else "no node"
        return 503, "", f"stream {stream_id!r} has no live owner ({who} holds it)"

    async def _file_target(self, scope: Scope, rec_id: int) -> tuple[int, str, str] | None:
        rows = await asyncio.to_thread(
            self.node.api_store.execute,
            "SELECT r.node_id, r.local_id, n.url, n.expires > now(), r.stream_id "
            "FROM cluster_recordings r "
            "LEFT JOIN cluster_nodes n ON n.node_id = r.node_id WHERE r.id = %s", (rec_id,))
        if not rows:
            scope["path"] = "/recordings/0/file"  # the route's own 404
            return None
        holder, local_id, url, alive, stream_id = rows[0]
        if not _sees(scope, stream_id):
            scope["path"] = "/recordings/0/file"  # the route's own 404
            return None
        if holder == self.node.node_id:
            scope["path"] = f"/recordings/{local_id}/file"
            return None
        if alive and url:
            return 307, url, f"recording {rec_id} is on node {holder}"
        return 503, "", f"recording {rec_id} is on node {holder}, which is down"


def _sees(scope: Scope, stream_id: str) -> bool:
    """A caller who may not see the stream gets the route's 404, not its owner's address."""
    caller = scope.get(CALLER)
    return isinstance(caller, Caller) and caller.principal.sees(stream_id)


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, base: str,
                  detail: str) -> None:
    location = ""
    if status == 307:
        query = scope.get("query_string", b"").decode("latin-1")
        location = base + scope["path"] + (f"?{query}" if query else "")
    error = "moved_to_owner" if status == 307 else "owner_unavailable"
    headers = [(b"location", location.encode())] if location else []
    if scope["type"] == "websocket":
        await refuse_websocket(scope, send, status, error, detail, headers)
        return
    response = error_response(status, error, detail)
    if location:
        response.headers["location"] = location
    await response(scope, receive, send)
