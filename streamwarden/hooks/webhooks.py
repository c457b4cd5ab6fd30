"""Webhooks: each trigger POSTed as JSON to the URLs that want it, signed, retried, bounded.

A `Notifier` listener (asyncio thread): `handle` turns the message into triggers and puts a
delivery in the outbox of every webhook whose `events` and `streams` match; it never waits.
One task per webhook empties its outbox (outbox.py decides what is due, what is retried and
when, what is dropped) with httpx's async client on the same loop, so a slow or dead receiver
costs a pending request and a bounded queue, never a blocked thread.

Each request: `POST url` with the JSON body `{"id", "type", "stream_id", "time", "details"}`,
`Content-Type: application/json`, `Idempotency-Key` (the body's `id`: the same for every
attempt at this delivery), `X-Streamwarden-Event` (the trigger), `X-Streamwarden-Attempt`
(1, 2, ...), and with a `secret`, `X-Streamwarden-Signature: sha256=<hex>` over the body
(signing.py). Redirects are not followed; the answer's body is not read; each attempt is
bounded by the webhook's `timeout` as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from streamwarden.config.hooks import WebhookSection
from streamwarden.hooks.outbox import Backoff, Delivery, Outbox, Outcome, classify, retry_after
from streamwarden.hooks.signing import (
    ATTEMPT_HEADER,
    EVENT_HEADER,
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    sign,
)
from streamwarden.hooks.triggers import Trigger, payload, triggers

log = logging.getLogger("streamwarden.hooks")

USER_AGENT = "streamwarden-webhook/1"


class WebhookSender:
    """One webhook: its outbox, and the task that empties it."""

    def __init__(self, config: WebhookSection, clock: Callable[[], float] = time.monotonic):
        self.config = config
        self.label = config.label
        self.outbox = Outbox(config.queue, Backoff(config.backoff, config.max_backoff),
                             config.max_attempts)
        self._clock = clock
        self._wake = asyncio.Event()
        self._dropping = False

    def wants(self, trigger: Trigger) -> bool:
        streams = self.config.streams
        return trigger.hook in self.config.events and (streams is None
                                                       or trigger.stream_id in streams)

    def offer(self, trigger: Trigger) -> None:
        key = str(uuid.uuid4())
        body = json.dumps({"id": key, **payload(trigger)}, separators=(",", ":")).encode()
        if self.outbox.offer(Delivery(key, trigger.hook, body)):
            self._dropping = False
            self._wake.set()
        elif not self._dropping:  # once per full spell, not once per event
            self._dropping = True
            log.warning("webhook %s: %d deliveries waiting (queue full); new ones are dropped "
                        "until it drains", self.label, len(self.outbox),
                        extra={"webhook": self.label, "event": "webhook_dropping"})

    async def run(self, client: httpx.AsyncClient) -> None:
        while True:
            now = self._clock()
            delivery = self.outbox.due(now)
            if delivery is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.outbox.wait(now))
                continue
            status, asked, what = await self._attempt(client, delivery)
            outcome = self.outbox.attempted(delivery, classify(status), self._clock(), asked)
            self._report(delivery, outcome, what)

    async def _attempt(self, client: httpx.AsyncClient,
                       delivery: Delivery) -> tuple[int | None, float | None, str]:
        """One POST: (status or None, Retry-After seconds, what happened in words)."""
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   IDEMPOTENCY_HEADER: delivery.key, EVENT_HEADER: delivery.hook,
                   ATTEMPT_HEADER: str(delivery.attempts + 1)}
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, delivery.body)
        try:
            async with asyncio.timeout(self.config.timeout), client.stream(
                    "POST", self.config.url, content=delivery.body, headers=headers,
                    timeout=self.config.timeout) as response:
                status = response.status_code
                asked = retry_after(response.headers.get("Retry-After"), time.time())
        except TimeoutError:
            return None, None, f"no answer within {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return status, asked, f"HTTP {status}"

    def _report(self, delivery: Delivery, outcome: Outcome, what: str) -> None:
        extra = {"webhook": self.label, "hook": delivery.hook, "attempt": delivery.attempts}
        if outcome is Outcome.DELIVERED:
            log.debug("webhook %s: %s delivered (attempt %d)", self.label, delivery.hook,
                      delivery.attempts, extra={**extra, "event": "webhook_delivered"})
        elif outcome is Outcome.RETRY:
            log.warning("webhook %s (%s): %s attempt %d failed (%s); retrying in %.1f s",
                        self.label, self.config.shown_url, delivery.hook, delivery.attempts,
                        what, max(0.0, delivery.not_before - self._clock()),
                        extra={**extra, "event": "webhook_retry"})
        else:
            log.error("webhook %s (%s): %s given up after %d attempt(s) (%s)", self.label,
                      self.config.shown_url, delivery.hook, delivery.attempts, what,
                      extra={**extra, "event": "webhook_given_up"})

    def stats(self) -> dict[str, Any]:
        counts = self.outbox.counts
        return {"webhook": self.label, "delivered": counts.delivered,
                "failed_attempts": counts.failed_attempts, "given_up": counts.given_up,
                "dropped": counts.dropped, "queued": len(self.outbox)}


class Webhooks:
    """Every configured webhook, fed from the notifier."""

    def __init__(self, configs: list[WebhookSection],
                 transport: httpx.AsyncBaseTransport | None = None):
        self.senders = [WebhookSender(config) for config in configs]
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        """On the asyncio thread, once: the client and one task per webhook."""
        self._client = httpx.AsyncClient(follow_redirects=False, transport=self._transport)
        client = self._client
        self._tasks = [asyncio.get_running_loop().create_task(s.run(client),
                                                              name=f"webhook-{s.label}")
                       for s in self.senders]

    def handle(self, message: dict[str, Any]) -> None:
        """A notification (asyncio thread): queue a delivery per matching webhook."""
        for trigger in triggers(message):
            for sender in self.senders:
                if sender.wants(trigger):
                    sender.offer(trigger)

    async def close(self, grace: float = 1.0) -> None:
        """Stop: up to `grace` seconds for queued deliveries to go, then the rest is dropped."""
        deadline = time.monotonic() + grace
        while any(len(s.outbox) for s in self.senders) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sender in self.senders:
            if left := sender.outbox.clear():
                log.warning("webhook %s: %d deliveries not sent at shutdown", sender.label,
                            left, extra={"webhook": sender.label})
        if self._client is not None:
            await self._client.aclose()

    def stats(self) -> list[dict[str, Any]]:
        return [sender.stats() for sender in self.senders]
