"""A stream's outputs: a tee per media kind and the consumers hanging off it.

Consumers come and go while the camera streams. Attaching requests a tee pad and links it;
detaching releases the pad at once (the tee never waits for a leaving consumer) and, for a
consumer that writes files, sends it EOS and keeps its bin until its sinks have finished
(their EOS arrives on the bus via `message-forward`) or a deadline passes, so a recording
that ends is a complete, playable file.

Changes run on the GStreamer thread only. The lookups (`find`, `consumers`) may be called
from any thread: they copy the attachments first (one step under the GIL), so a consumer
attached or detached meanwhile is either seen whole or not at all.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TypeVar

from streamwarden.consumers.base import Consumer
from streamwarden.gst.init import Gst
from streamwarden.gst.reaper import Reaper

log = logging.getLogger("streamwarden.stream")

DRAIN_DEADLINE_S = 3.0
C = TypeVar("C", bound=Consumer)


@dataclass
class _Attachment:
    consumer: Consumer
    tee_pads: dict[str, Gst.Pad] = field(default_factory=dict)


@dataclass
class _Draining:
    consumer: Consumer
    deadline: float


class Outputs:
    """The tees of one stream's pipeline and the consumers attached to them."""

    def __init__(self, stream_id: str, pipeline: Gst.Pipeline, reaper: Reaper):
        self.stream_id = stream_id
        self.pipeline = pipeline
        self._reaper = reaper
        self.tees: dict[str, Gst.Element] = {}
        self._attached: dict[str, _Attachment] = {}
        self._draining: dict[str, _Draining] = {}

    # ---- tees ------------------------------------------------------------------------------

    def tee(self, kind: str) -> Gst.Element:
        """The tee for `video` or `audio`, created on first use and kept for the stream's life."""
        tee = self.tees.get(kind)
        if tee is None:
            tee = Gst.ElementFactory.make("tee", f"tee-{kind}")
            tee.set_property("allow-not-linked", True)
            self.pipeline.add(tee)
            tee.sync_state_with_parent()
            self.tees[kind] = tee
            for attachment in self._attached.values():
                self._link(attachment, kind)
        return tee

    # ---- attach / detach -------------------------------------------------------------------

    def attach(self, consumer: Consumer) -> None:
        if consumer.name in self._attached or consumer.name in self._draining:
            raise ValueError(f"consumer {consumer.name!r} is already attached")
        bin_ = consumer.build()
        bin_.set_property("message-forward", True)
        self.pipeline.add(bin_)
        attachment = _Attachment(consumer)
        self._attached[consumer.name] = attachment
        for kind in list(self.tees):
            self._link(attachment, kind)
        bin_.sync_state_with_parent()

    def _link(self, attachment: _Attachment, kind: str) -> None:
        consumer = attachment.consumer
        if kind == "audio" and not consumer.wants_audio:
            return
        sink = consumer.bin.get_static_pad(kind) if consumer.bin is not None else None
        if sink is None or kind in attachment.tee_pads:
            return
        tee_pad = self.tees[kind].request_pad_simple("src_%u")
        tee_pad.link(sink)
        attachment.tee_pads[kind] = tee_pad

    def detach(self, consumer: Consumer, eos: bool = True) -> bool:
        """Cut `consumer` off the tees; drain it first if it writes files. False if it is not
        attached (never was, already detached, or another consumer took its name since)."""
        name = consumer.name
        attachment = self._attached.get(name)
        if attachment is None or attachment.consumer is not consumer:
            return False
        del self._attached[name]
        sinks = []
        for kind, tee_pad in attachment.tee_pads.items():
            peer = tee_pad.get_peer()
            if peer is not None:
                tee_pad.unlink(peer)
                sinks.append(peer)
            self.tees[kind].release_request_pad(tee_pad)
        if eos and consumer.needs_eos_on_detach and sinks:
            consumer.expect_eos()
            self._draining[name] = _Draining(consumer, time.monotonic() + DRAIN_DEADLINE_S)
            for pad in sinks:
                pad.send_event(Gst.Event.new_eos())
        else:
            self._dispose(consumer)
        return True

    def detach_all(self, eos: bool = True) -> None:
        for attachment in list(self._attached.values()):
            self.detach(attachment.consumer, eos)

    def _dispose(self, consumer: Consumer) -> None:
        if consumer.bin is not None and consumer.bin.get_parent() is self.pipeline:
            self.pipeline.remove(consumer.bin)
            self._reaper.dispose(consumer.bin)
        consumer.disposed()

    @property
    def drained(self) -> bool:
        return not self._draining

    def tick(self, now: float) -> None:
        for attachment in list(self._attached.values()):
            attachment.consumer.tick(now)
        self.check_drain_deadlines(now)

    def check_drain_deadlines(self, now: float) -> None:
        for name, draining in list(self._draining.items()):
            if draining.consumer.drained:
                del self._draining[name]
                self._dispose(draining.consumer)
            elif now >= draining.deadline:
                log.warning("stream %s: consumer %s did not finish within %gs; stopped anyway",
                            self.stream_id, name, DRAIN_DEADLINE_S,
                            extra={"stream_id": self.stream_id, "consumer": name})
                del self._draining[name]
                self._dispose(draining.consumer)

    # ---- bus -------------------------------------------------------------------------------

    def owner_of(self, element: Gst.Object | None) -> Consumer | None:
        """The consumer (attached or draining) whose bin contains `element`."""
        bins = {id(a.consumer.bin): a.consumer for a in self._attached.values()}
        bins.update({id(d.consumer.bin): d.consumer for d in self._draining.values()})
        while element is not None:
            if id(element) in bins:
                return bins[id(element)]
            element = element.get_parent()
        return None

    def handle_forwarded(self, message: Gst.Message) -> None:
        """A message a consumer bin forwarded: hand it over, finish a drain that completed."""
        structure = message.get_structure()
        if structure is None or structure.get_name() != "GstBinForwarded":
            return
        inner = structure.get_value("message")
        consumer = self.owner_of(message.src)
        if inner is None or consumer is None:
            return
        consumer.on_forwarded(inner)
        draining = self._draining.get(consumer.name)
        if draining is not None and draining.consumer is consumer and consumer.drained:
            del self._draining[consumer.name]
            self._dispose(consumer)

    # ---- lookups (any thread) --------------------------------------------------------------

    def find(self, kind: type[C]) -> C | None:
        """The attached consumer of class `kind` (recorder, relay, live mux, decoder), if any.

        Typed, so callers get a `Recorder | None` and need no name string and no isinstance
        check. Each of those classes is attached at most once per stream."""
        for attachment in list(self._attached.values()):
            if isinstance(attachment.consumer, kind):
                return attachment.consumer
        return None

    def consumers(self) -> list[Consumer]:
        return [a.consumer for a in list(self._attached.values())]
