"""The hooks' and webhooks' rules with plain values and a fake clock: the run limit and its
drops, the output budget, retries with backoff, the webhook line's order and drops, and the
signature a receiver checks."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from streamwarden.hooks.outbox import Backoff, Delivery, Outbox, Outcome, classify, retry_after
from streamwarden.hooks.output import LineSplitter, OutputBudget
from streamwarden.hooks.runqueue import Offer, RunQueue
from streamwarden.hooks.signing import sign, verify

# ---- the run queue ---------------------------------------------------------------------------


def test_runs_beyond_the_limit_wait_in_order_and_beyond_the_line_are_dropped():
    queue: RunQueue[str] = RunQueue(max_running=2, max_waiting=2)
    assert [queue.offer(x) for x in "abcde"] == [Offer.START, Offer.START, Offer.QUEUED,
                                                 Offer.QUEUED, Offer.DROPPED]
    assert (queue.running, queue.waiting) == (2, 2)
    assert queue.finished() == "c"  # a run ended: the oldest waiting one takes its place
    assert queue.offer("f") == Offer.QUEUED
    assert [queue.finished(), queue.finished()] == ["d", "f"]
    assert (queue.running, queue.waiting) == (2, 0)
    assert [queue.finished(), queue.finished(), queue.finished()] == [None, None, None]
    assert queue.running == 0, "never below zero"
    assert queue.offer("g") == Offer.START


def test_a_queue_of_zero_drops_everything_over_the_limit_and_clear_empties_the_line():
    queue: RunQueue[int] = RunQueue(max_running=1, max_waiting=0)
    assert [queue.offer(i) for i in range(3)] == [Offer.START, Offer.DROPPED, Offer.DROPPED]
    queue = RunQueue(max_running=1, max_waiting=5)
    for i in range(4):
        queue.offer(i)
    assert queue.clear() == [1, 2, 3] and queue.waiting == 0 and queue.finished() is None


# ---- output ----------------------------------------------------------------------------------


def test_output_budget_counts_what_it_leaves_out_and_cuts_long_lines():
    budget = OutputBudget(max_lines=2, max_line=10)
    assert budget.take("short") == "short"
    assert budget.take("x" * 25) == "x" * 10 + "… (cut)"
    assert budget.take("third") is None and budget.take("fourth") is None
    assert (budget.logged, budget.skipped) == (2, 2)
    assert OutputBudget(max_lines=0).take("anything") is None


def test_lines_split_across_chunks_and_a_line_without_end_at_close():
    split = LineSplitter(limit=100)
    assert split.feed(b"hel") == []
    assert split.feed(b"lo\nwor") == ["hello"]
    assert split.feed(b"ld\r\n\n") == ["world", ""]
    assert split.feed("é".encode()[:1]) == []  # half a character waits for the rest
    assert split.feed("é".encode()[1:] + b"\n") == ["é"]
    assert split.feed(b"tail") == [] and split.close() == ["tail"]
    assert split.close() == []


def test_an_endless_line_is_cut_at_the_limit_and_its_rest_skipped():
    split = LineSplitter(limit=8)
    assert split.feed(b"abcdef") == []
    assert split.feed(b"ghijkl") == ["abcdefgh"]  # no newline yet: handed out, cut
    assert split.feed(b"more and more") == []  # still the same line: dropped
    assert split.feed(b"...\nnext\n") == ["next"]
    assert split.feed(b"12345678\nx\n") == ["12345678", "x"]  # exactly the limit
    assert split.feed(b"\xff\xfe bad bytes\n") == ["\ufffd\ufffd bad b"]


# ---- webhook retries -------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.DELIVERED), (204, Outcome.DELIVERED), (None, Outcome.RETRY),
    (500, Outcome.RETRY), (503, Outcome.RETRY), (429, Outcome.RETRY), (408, Outcome.RETRY),
    (400, Outcome.REFUSED), (401, Outcome.REFUSED), (404, Outcome.REFUSED),
    (301, Outcome.REFUSED),
])
def test_what_an_answer_means(status, outcome):
    assert classify(status) is outcome


def test_backoff_doubles_up_to_its_maximum_and_honours_retry_after():
    backoff = Backoff(initial=1.0, maximum=30.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(2, asked=10.0) == 10.0  # the receiver asked for longer
    assert backoff.delay(5, asked=3.0) == 16.0  # never shorter than the backoff
    assert backoff.delay(1, asked=3600.0) == 30.0  # and never past the maximum
    assert backoff.delay(10_000) == 30.0


def test_retry_after_in_seconds_or_as_a_date():
    now = 1_700_000_000.0
    assert retry_after("120", now) == 120.0
    assert retry_after("Wed, 15 Nov 2023 00:13:20 GMT", now) == pytest.approx(7200.0)
    assert retry_after("Tue, 14 Nov 2023 20:00:00 GMT", now) == 0.0  # already past
    assert retry_after("soon", now) is None and retry_after(None, now) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0


def delivery(n: int) -> Delivery:
    return Delivery(f"key-{n}", "segment_complete", b'{"n":%d}' % n)


def test_one_delivery_at_a_time_oldest_first_retried_with_backoff_until_delivered():
    clock = FakeClock()
    outbox = Outbox(capacity=10, backoff=Backoff(1.0, 8.0), max_attempts=10)
    for n in range(3):
        assert outbox.offer(delivery(n))
    first = outbox.due(clock.now)
    assert first is not None and first.key == "key-0"
    waits = []
    for _ in range(4):  # the receiver is down
        assert outbox.attempted(first, Outcome.RETRY, clock.now) is Outcome.RETRY
        waits.append(outbox.wait(clock.now))
        assert outbox.due(clock.now) is None, "nothing goes while the oldest waits"
        clock.now += waits[-1]
        assert outbox.due(clock.now) is first, "the same delivery again: same key, same body"
    assert waits == [1.0, 2.0, 4.0, 8.0]
    assert outbox.attempted(first, Outcome.DELIVERED, clock.now) is Outcome.DELIVERED
    keys = []
    while (item := outbox.due(clock.now)) is not None:
        keys.append(item.key)
        outbox.attempted(item, Outcome.DELIVERED, clock.now)
    assert keys == ["key-1", "key-2"] and outbox.wait(clock.now) is None
    assert outbox.counts.delivered == 3 and outbox.counts.failed_attempts == 4
    assert outbox.counts.given_up == 0 and outbox.counts.dropped == 0


def test_given_up_after_max_attempts_or_at_once_when_refused():
    clock = FakeClock()
    outbox = Outbox(capacity=10, backoff=Backoff(0.5, 1.0), max_attempts=3)
    outbox.offer(delivery(0))
    outbox.offer(delivery(1))
    item = outbox.due(clock.now)
    for expected in (Outcome.RETRY, Outcome.RETRY, Outcome.GIVEN_UP):
        assert outbox.attempted(item, Outcome.RETRY, clock.now) is expected
        clock.now += 1.0
    refused = outbox.due(clock.now)
    assert refused.key == "key-1"
    assert outbox.attempted(refused, Outcome.REFUSED, clock.now) is Outcome.GIVEN_UP
    assert len(outbox) == 0
    assert (outbox.counts.given_up, outbox.counts.failed_attempts) == (2, 4)


def test_a_full_line_drops_new_deliveries_and_counts_them():
    outbox = Outbox(capacity=2, backoff=Backoff(1.0, 1.0), max_attempts=1)
    assert [outbox.offer(delivery(n)) for n in range(4)] == [True, True, False, False]
    assert outbox.counts.dropped == 2 and len(outbox) == 2
    with pytest.raises(ValueError, match="oldest"):
        outbox.attempted(delivery(9), Outcome.DELIVERED, 0.0)
    assert outbox.clear() == 2 and len(outbox) == 0


def test_retry_after_from_the_receiver_sets_the_wait():
    outbox = Outbox(capacity=2, backoff=Backoff(1.0, 60.0), max_attempts=5)
    outbox.offer(delivery(0))
    item = outbox.due(0.0)
    outbox.attempted(item, Outcome.RETRY, 0.0, asked=20.0)
    assert outbox.wait(0.0) == 20.0 and outbox.due(19.9) is None and outbox.due(20.0) is item


# ---- signatures ------------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_the_exact_body():
    secret, body = "a-long-enough-secret", b'{"id":"k","type":"event_end"}'
    header = sign(secret, body)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    assert verify(secret, body, header)
    assert not verify(secret, body + b" ", header), "any change to the body breaks it"
    assert not verify("another-long-secret!", body, header)
    assert not verify(secret, body, None) and not verify(secret, body, expected)
