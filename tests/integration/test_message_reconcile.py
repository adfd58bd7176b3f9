"""A sent WhatsApp message whose status webhooks were lost is settled (issue 14, 10d).

The ingress was down past the provider's re-delivery: no status ever arrives. After
`message_status` the reaper asks the adapter where it can (the simulator answers like
Twilio's message fetch), else marks the message `unknown`; a late status still moves
it on, and neither state holds the campaign open. Real PostgreSQL and Redis, the
in-process driver on a manual clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from dialer.providers.base import (
    MessageLookup,
    MessageStatusUpdate,
    SendMessageRequest,
    SendResult,
)
from dialer.providers.events import MESSAGE_STATUS_EVENT
from dialer.providers.simulation import SimulatedMessageProvider
from dialer.services.inbox import take_in
from dialer.services.messages import apply_message_status
from models.session import transaction
from scheduler.driver import InProcessPipeline
from scheduler.ticks import ReapLimits
from tests.integration.pipeline_support import (
    MONDAY_8_UTC,
    campaign_status,
    make_driver,
    messages_of,
    rome_csv,
    setup_campaign,
    start,
)

pytestmark = pytest.mark.integration

ONE_MINUTE = timedelta(minutes=1)
DEADLINE = timedelta(minutes=30)
NOBODY_ANSWERS: dict[str, Any] = {
    "answer_rate": 0.0,
    "voicemail_rate": 0.0,
    "failure_rate": 0.0,
    "busy_rate": 0.5,
    "no_answer_rate": 0.5,
    "whatsapp_reply_rate": 0.0,
}
LIMITS = ReapLimits(
    queued=timedelta(days=1),
    dispatching=timedelta(days=1),
    max_call=timedelta(minutes=20),
    inbox_retry_seconds=86_400.0,
    message_status=DEADLINE,
)
# One fallback after the only call: the campaign has nothing else to wait for.
SPEC = {"call_attempt_delays": [], "whatsapp_after_attempts": 1}


class CloudLikeSender:
    """The simulator's sender without its lookup: like the WhatsApp Cloud API."""

    name = "whatsapp"

    def __init__(self, inner: SimulatedMessageProvider) -> None:
        self._inner = inner

    def send(self, request: SendMessageRequest) -> SendResult:
        return self._inner.send(request)


def lose_message_statuses(driver: InProcessPipeline) -> list[dict[str, Any]]:
    """Every message status webhook is lost (the ingress was down past re-delivery);
    returns the list the lost ones are kept in."""
    pop = driver.voice.pop_due_events
    lost: list[dict[str, Any]] = []

    def calls_only(now: Any, limit: int = 500) -> list[dict[str, Any]]:
        payloads = pop(now, limit)
        lost.extend(p for p in payloads if p.get("type") == MESSAGE_STATUS_EVENT)
        return [p for p in payloads if p.get("type") != MESSAGE_STATUS_EVENT]

    driver.voice.pop_due_events = calls_only  # type: ignore[method-assign]
    return lost


def run_until_sent(driver: InProcessPipeline, url: str, campaign_id: Any) -> None:
    for _ in range(120):
        driver.tick()
        driver.reap(replace(LIMITS, message_status=None))
        if any(m.status == "sent" for m in messages_of(url, campaign_id)):
            return
        driver.clock.advance(ONE_MINUTE)
    raise AssertionError("no fallback was sent")


def reap_past_the_deadline(driver: InProcessPipeline) -> None:
    driver.clock.advance(DEADLINE + ONE_MINUTE)
    driver.tick()
    driver.reap(LIMITS)


def test_a_sent_message_without_status_is_looked_up_where_the_adapter_can(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, SPEC, rome_csv(3))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    assert isinstance(driver.messages, MessageLookup)
    lose_message_statuses(driver)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_until_sent(driver, clean_db, campaign_id)
    driver.clock.advance(ONE_MINUTE)
    driver.reap(LIMITS)  # not late yet: nothing is asked
    assert "sent" in {m.status for m in messages_of(clean_db, campaign_id)}

    reap_past_the_deadline(driver)
    fallbacks = messages_of(clean_db, campaign_id)
    assert len(fallbacks) == 3
    assert {m.status for m in fallbacks} == {"delivered"}  # what the provider said


def test_without_a_lookup_it_is_marked_unknown_and_a_late_status_still_applies(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, SPEC, rome_csv(2))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    driver.messages = CloudLikeSender(driver.messages)  # type: ignore[assignment]
    lose_message_statuses(driver)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_until_sent(driver, clean_db, campaign_id)
    for _ in range(30):
        reap_past_the_deadline(driver)
        if campaign_status(clean_db, campaign_id) == "done":
            break
    assert campaign_status(clean_db, campaign_id) == "done"  # unknown owes nothing
    messages = messages_of(clean_db, campaign_id)
    assert {m.status for m in messages} == {"unknown"}
    assert all("no message lookup" in (m.error or "") for m in messages)

    late = messages[0]
    with transaction(clean_db) as session:
        assert late.provider_message_id is not None
        update = MessageStatusUpdate(provider_message_id=late.provider_message_id, status="read")
        assert apply_message_status(session, update, driver.clock())
    assert {m.id: m.status for m in messages_of(clean_db, campaign_id)}[late.id] == "read"


def test_a_status_stored_but_not_yet_applied_is_not_called_unknown(
    clean_db: str, redis_url: str
) -> None:
    """The ingress took the webhook; its apply task waits in a backlog: not a loss."""
    campaign_id = setup_campaign(clean_db, SPEC, rome_csv(1))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    driver.messages = CloudLikeSender(driver.messages)  # type: ignore[assignment]
    lost = lose_message_statuses(driver)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_until_sent(driver, clean_db, campaign_id)
    driver.clock.advance(timedelta(seconds=30))
    driver.tick()  # the statuses fall due and are "delivered" to the ingress...
    assert lost, "no status event came due"
    with transaction(clean_db) as session:  # ...which stores them; nobody applies them yet
        for payload in lost:
            take_in(session, driver.voice.name, driver.voice.parse_event, payload)
    reap_past_the_deadline(driver)
    assert {m.status for m in messages_of(clean_db, campaign_id)} == {"sent"}
