"""Work a dying process left half done is found again (issue 14, item 10).

Each test kills a step where the fault runs found work lost: the process "dies" by
raising out of the duty after its claim committed, as kill -9 would leave it, and
the test shows the reaper or the relay hands the work back. Real PostgreSQL and
Redis, the in-process driver on a manual clock.
"""

from __future__ import annotations

import contextlib
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
import redis

from dialer.providers.base import (
    CallRecord,
    PlaceCallRequest,
    ProviderEvent,
    SendMessageRequest,
    SendResult,
)
from dialer.providers.ratelimit import BucketLimits, RateLimited, RedisRateLimiter
from dialer.providers.simulation import SimulatedVoiceProvider
from dialer.services.dispatch import DispatchLimits, Verdict, dispatch_batch
from models.session import transaction
from scheduler import ticks
from scheduler.driver import InProcessPipeline
from scheduler.scan import scan_campaign
from scheduler.ticks import ReapLimits
from tests.integration.pipeline_support import (
    LEGAL,
    MONDAY_8_UTC,
    attempts_of,
    campaign_status,
    enrollments_of,
    make_driver,
    messages_of,
    relay,
    rome_csv,
    setup_campaign,
    start,
)

pytestmark = pytest.mark.integration

ONE_MINUTE = timedelta(minutes=1)
NOBODY_ANSWERS: dict[str, Any] = {
    "answer_rate": 0.0,
    "voicemail_rate": 0.0,
    "failure_rate": 0.0,
    "busy_rate": 0.5,
    "no_answer_rate": 0.5,
    "whatsapp_reply_rate": 0.0,
}
REAP_NOTHING = ReapLimits(
    queued=timedelta(days=1),
    dispatching=timedelta(days=1),
    max_call=timedelta(days=1),
    inbox_retry_seconds=86_400.0,
)


class WorkerKilled(BaseException):
    """What kill -9 does to a duty: it stops where it is, nothing after it runs."""


def dying_sender(driver: InProcessPipeline) -> Callable[[], None]:
    """Make the next sends die before the provider is asked; returns the cure."""
    send = driver.messages.send

    def killed(request: SendMessageRequest) -> SendResult:
        raise WorkerKilled

    driver.messages.send = killed  # type: ignore[method-assign]
    return lambda: setattr(driver.messages, "send", send)


def tick_and_reap(driver: InProcessPipeline, limits: ReapLimits) -> None:
    with contextlib.suppress(WorkerKilled):  # the send task died after claiming
        driver.tick()
    driver.reap(limits)


def test_a_fallback_claimed_by_a_send_task_that_died_is_sent_and_the_campaign_waits(
    clean_db: str, redis_url: str
) -> None:
    spec = {"call_attempt_delays": [10], "whatsapp_after_attempts": 1}
    campaign_id = setup_campaign(clean_db, spec, rome_csv(3))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    cure = dying_sender(driver)
    limits = replace(REAP_NOTHING, message_queued=timedelta(minutes=5))
    for _ in range(30):  # the first calls end, their fallbacks are claimed, the send dies
        tick_and_reap(driver, limits)
        if any(m.status == "queued" for m in messages_of(clean_db, campaign_id)):
            break
        driver.clock.advance(ONE_MINUTE)
    claimed = [m for m in messages_of(clean_db, campaign_id) if m.status == "queued"]
    assert claimed, "no fallback was claimed"
    cure()

    driver.clock.advance(ONE_MINUTE)
    driver.reap(limits)  # not late yet: the send may still be under way
    assert {
        m.status for m in messages_of(clean_db, campaign_id) if m.id in {c.id for c in claimed}
    } == {"queued"}
    for _ in range(200):
        tick_and_reap(driver, limits)
        if campaign_status(clean_db, campaign_id) == "done":
            break
        driver.clock.advance(ONE_MINUTE)
    assert campaign_status(clean_db, campaign_id) == "done"
    fallbacks = [m for m in messages_of(clean_db, campaign_id) if m.purpose == "fallback"]
    assert len(fallbacks) == 3
    assert {m.status for m in fallbacks} <= {"sent", "delivered", "read"}
    sent_keys = [entry["idempotency_key"] for entry in driver.messages.sent_messages()]
    assert sorted(sent_keys) == sorted({m.idempotency_key for m in fallbacks})  # once each


def test_the_campaign_is_not_done_while_a_claimed_message_is_owed(
    clean_db: str, redis_url: str
) -> None:
    spec = {"call_attempt_delays": [], "whatsapp_after_attempts": 1}
    campaign_id = setup_campaign(clean_db, spec, rome_csv(2))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    dying_sender(driver)
    for _ in range(30):
        tick_and_reap(driver, REAP_NOTHING)  # nothing is reaped: the claim stays
        driver.clock.advance(ONE_MINUTE)
    assert {m.status for m in messages_of(clean_db, campaign_id)} == {"queued"}
    assert campaign_status(clean_db, campaign_id) == "running"


def test_a_start_event_taken_by_a_worker_that_died_is_published_again(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {}, rome_csv(3))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    taken: list[str] = []

    def lost(topic: str, payload: dict[str, Any]) -> None:
        taken.append(topic)  # the broker has it; the worker holding it is killed

    republish_after = timedelta(minutes=5)
    assert ticks.relay_outbox(driver.uow, lost, driver.clock(), republish_after) == 1
    driver.clock.advance(timedelta(minutes=4))
    assert ticks.relay_outbox(driver.uow, lost, driver.clock(), republish_after) == 0
    assert attempts_of(clean_db, campaign_id) == []

    driver.clock.advance(timedelta(minutes=2))
    assert relay(driver, republish_after) == 1  # unhandled and late: published again
    assert len(attempts_of(clean_db, campaign_id)) == 3
    driver.clock.advance(timedelta(minutes=10))
    assert relay(driver, republish_after) == 0  # handled: never again
    assert taken == ["campaign.started"]


@dataclass
class BudgetedVoice:
    """The HTTP adapter's contract with the fleet's limiter, over the simulator: take a
    token from the Redis bucket, or raise RateLimited with nothing sent."""

    inner: SimulatedVoiceProvider
    limiter: RedisRateLimiter
    name: str = "simulated"

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        wait = self.limiter.acquire()
        if wait > 0:
            raise RateLimited("call budget spent", retry_after_seconds=wait, kind="call_budget")
        return self.inner.place_call(request)

    def get_call(self, call_id: str) -> CallRecord:
        return self.inner.get_call(call_id)

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        return self.inner.parse_event(payload)


def test_a_call_our_rate_limit_refused_is_no_try_no_outcome_and_no_fallback(
    clean_db: str, redis_url: str
) -> None:
    spec = {"call_attempt_delays": [10], "whatsapp_after_attempts": 1}
    campaign_id = setup_campaign(clean_db, spec, rome_csv(3))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)
    with transaction(clean_db) as session:
        ids = scan_campaign(session, campaign_id, driver.clock(), LEGAL, 500).claimed
    assert len(ids) == 3
    # One token and a frozen clock: the bucket never refills, so two calls wait forever.
    bucket = BucketLimits(rate_per_second=1.0, burst=1)
    limiter = RedisRateLimiter(
        redis.Redis.from_url(redis_url), bucket, key=f"test:{uuid.uuid4()}", clock=lambda: 1e9
    )
    voice = BudgetedVoice(driver.voice, limiter)
    limits = DispatchLimits(legal=LEGAL, max_tries=2)

    for _ in range(2 * limits.max_tries + 1):  # more re-sends than the tries allowed
        reports = dispatch_batch(driver.uow, voice, ids, driver.clock, limits)
    verdicts = Counter(r.verdict for r in reports)
    assert verdicts == {Verdict.THROTTLED: 2, Verdict.NOT_QUEUED: 1}
    assert all(r.retry_after_seconds for r in reports if r.verdict is Verdict.THROTTLED)
    attempts = attempts_of(clean_db, campaign_id)
    placed = [a for a in attempts if a.status == "in_progress"]
    waiting = [a for a in attempts if a.status == "queued"]
    assert len(placed) == 1
    assert placed[0].delivery_attempts == 1
    assert len(waiting) == 2
    for attempt in waiting:
        assert attempt.delivery_attempts == 0  # never reached the provider: no try
        assert attempt.outcome is None
        assert attempt.finished_at is None
        assert attempt.dispatched_at is None
        assert attempt.last_error is not None
        assert "call budget" in attempt.last_error
    assert {e.state for e in enrollments_of(clean_db, campaign_id)} == {"active"}
    assert {e.unanswered_calls for e in enrollments_of(clean_db, campaign_id)} == {0}
    assert messages_of(clean_db, campaign_id) == []  # no "we tried to call you"
    assert len(driver.voice.ledger()) == 1
