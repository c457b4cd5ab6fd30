"""The producer's output side: a tee per media kind and the consumers hanging off it.

Consumers come and go while the camera streams. Attaching requests a tee pad and links it;
detaching releases the pad at once (the tee never waits for a leaving consumer) and, for a
consumer that writes files, sends it EOS and keeps its bin until its sinks have finished
(their EOS arrives on the bus via `message-forward`) or a deadline passes, so a recording
that ends is a complete, playable file. Runs on the GStreamer thread only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from streamwarden.consumers.base import Consumer
from streamwarden.gst.init import Gst
from streamwarden.gst.reaper import Reaper

log = logging.getLogger("streamwarden.stream")

DRAIN_DEADLINE_S = 3.0


@dataclass
class _Attachment:
    consumer: Consumer
    tee_pads: dict[str, Gst.Pad] = field(default_factory=dict)


@dataclass
class _Draining:
    consumer: Consumer
    deadline: float


class ConsumerHub:
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

    def detach(self, name: str, eos: bool = True) -> bool:
        """Cut the consumer off the tees; drain it first if it writes files. False if unknown."""
        attachment = self._attached.pop(name, None)
        if attachment is None:
            return False
        consumer = attachment.consumer
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
        for name in list(self._attached):
            self.detach(name, eos)

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

    def owner_of(self, element: Gst.Object | None) -> str | None:
        """Name of the consumer (attached or draining) whose bin contains `element`."""
        bins = {id(a.consumer.bin): n for n, a in self._attached.items()}
        bins.update({id(d.consumer.bin): n for n, d in self._draining.items()})
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
        name = self.owner_of(message.src)
        if inner is None or name is None:
            return
        draining = self._draining.get(name)
        consumer = draining.consumer if draining else self.consumer(name)
        if consumer is None:
            return
        consumer.on_forwarded(inner)
        if draining is not None and consumer.drained:
            del self._draining[name]
            self._dispose(consumer)

    def consumer(self, name: str) -> Consumer | None:
        attachment = self._attached.get(name)
        return attachment.consumer if attachment else None

    def consumers(self) -> list[Consumer]:
        return [a.consumer for a in list(self._attached.values())]
