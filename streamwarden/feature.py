"""What a feature is: something that streams can have (recording, restream, live view, inference).

A `Stream` owns one camera's pipeline and nothing else. Everything a stream can *do* besides
ingesting (record, re-serve over RTSP, feed browsers, decode for a model) is a feature: an
object built once by the service and handed to `StreamManager(..., features=[...])` at
construction. The manager knows no feature by name; as streams come, change and go it calls
the same hooks on every feature, in the order the service listed them. A feature
reaches a stream only through what the hooks give it (or the read-only `StreamRegistry`, if
it needs to find a stream by id later), never through the manager, so nothing points back
at the manager and the references form a tree: service → manager → features → registry.

Which thread runs what (see gst/loop.py and docs/architecture.md, "Threads"): the GStreamer
thread (`gst-main`) owns every pipeline change, so every hook that may touch a pipeline runs
there, inside the manager's own change, with nothing else interleaved:

- `prepare(config, previous)`: a worker thread (`asyncio.to_thread`), *before* anything
  changes. The one hook allowed to block (loading a model takes seconds). Raising refuses
  the add or change: the exception reaches the API caller and no stream was touched.
  `previous` is None for a new stream (also a stream restarted by a PATCH of its URI or
  source settings, which is removed and added again).
- `stream_added(stream)`: GStreamer thread, right after the stream's pipeline started. Attach
  consumers (`stream.attach(...)`), mount things. Must not block: every camera's
  supervision tick waits meanwhile.
- `stream_changed(stream, previous)`: GStreamer thread, after `stream.config` became the new
  config (only in-place changes: recording, inference or restream toggled by a PATCH or a
  config reload). Compare with `previous`.
- `stream_removed(stream)`: GStreamer thread, after the stream's source stopped and its
  consumers were detached (EOS sent to those that write files): drop per-stream state
  (mounts, claims, worker slots). Not called at shutdown, when the service closes each
  feature itself.
- `state_changed(stream, transition)`: GStreamer thread, when supervision moves the stream
  from one state to another (`streaming` → `retrying`, ...), after it was logged and
  published. Must not block.
- `health(stream)`: any thread (the API on asyncio, the metrics scrape on a worker thread).
  Returns the feature's fields of the stream's health entry (`api/views.py` merges them into
  the stream's own numbers). Reads plain values only: no GStreamer calls, no locks held for
  long, never blocks.

To find its consumer on a stream a feature asks by class: `stream.consumer(Recorder)` is a
`Recorder | None` (any thread).

Features subclass `Feature` and override only the hooks they need; the others do nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from streamwarden.config.model import StreamConfig
    from streamwarden.ingest.stream import Stream
    from streamwarden.ingest.supervisor import Transition


class Feature(Protocol):
    """The hooks a feature implements; each default does nothing (see the module docstring)."""

    def prepare(self, config: StreamConfig, previous: StreamConfig | None) -> None:
        """Worker thread, before a stream is added or changed; may block; raise to refuse."""
        return None

    def stream_added(self, stream: Stream) -> None:
        """GStreamer thread: a stream started."""
        return None

    def stream_changed(self, stream: Stream, previous: StreamConfig) -> None:
        """GStreamer thread: `stream.config` changed in place (was `previous`)."""
        return None

    def stream_removed(self, stream: Stream) -> None:
        """GStreamer thread: the stream stopped and its consumers are detached."""
        return None

    def state_changed(self, stream: Stream, transition: Transition) -> None:
        """GStreamer thread: the stream's supervision state changed; must not block."""
        return None

    def health(self, stream: Stream) -> dict[str, Any]:
        """Any thread: this feature's fields of the stream's health entry."""
        return {}
