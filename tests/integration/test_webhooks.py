"""Outbound event webhooks on real PostgreSQL and a real HTTP receiver (issue 17).

Events are written with the change that causes them (and not on rollback); the
sender signs, retries with backoff on an injected clock, keeps one event id across
tries, logs every try, and disables an endpoint that keeps failing.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from itertools import pairwise

import pytest
from sqlalchemy import select

from dialer import metrics
from dialer.policies.vocabulary import WebhookDeliveryStatus, WebhookEventType
from dialer.policies.webhooks import RetryPolicy, verify_signature
from dialer.providers.webhook_sender import HttpWebhookSender
from dialer.services import webhooks
from dialer.services.lifecycle import lock_campaign, pause_campaign, start_campaign
from dialer.services.webhook_delivery import claim_due
from models import Campaign, WebhookDelivery, WebhookEndpoint
from models.session import transaction
from scheduler import ticks
from scheduler.driver import ManualClock
from tests.integration.pipeline_support import (
    MONDAY_8_UTC,
    make_driver,
    rome_csv,
    run_to_done,
    setup_campaign,
    start,
    uow_for,
)
from tests.integration.webhook_receiver import Received, receiver

ALL_EVENTS = [str(word) for word in WebhookEventType]


def _account_of(url: str, campaign_id: uuid.UUID) -> uuid.UUID:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).account_id


def _endpoint(
    url: str, account_id: uuid.UUID, target: str, events: list[str] = ALL_EVENTS
) -> tuple[uuid.UUID, str]:
    with transaction(url) as session:
        made = webhooks.create_endpoint(session, account_id, target, events, allow_private=True)
        return made.endpoint.id, made.secret


def _deliveries(url: str, endpoint_id: uuid.UUID | None = None) -> list[WebhookDelivery]:
    with transaction(url) as session:
        query = select(WebhookDelivery).order_by(WebhookDelivery.id)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        return list(session.scalars(query))


def test_campaign_events_are_written_with_the_change_and_not_on_rollback(clean_db: str) -> None:
    campaign_id = setup_campaign(clean_db)
    account_id = _account_of(clean_db, campaign_id)
    endpoint_id, _ = _endpoint(clean_db, account_id, "https://hooks.example.com/a")
    _endpoint(clean_db, account_id, "https://hooks.example.com/b", ["call.completed"])

    def start_then_fail() -> None:
        with transaction(clean_db) as session:
            start_campaign(session, lock_campaign(session, campaign_id), MONDAY_8_UTC)
            assert len(_pending_in(session)) == 1  # written in the transaction...
            raise RuntimeError("the start fails after the event was written")

    with pytest.raises(RuntimeError):
        start_then_fail()
    assert _deliveries(clean_db) == []  # ...and gone with it

    start(clean_db, campaign_id, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)  # running -> running: no change, no event
    with transaction(clean_db) as session:
        pause_campaign(session, lock_campaign(session, campaign_id), MONDAY_8_UTC)
    rows = _deliveries(clean_db)
    assert [(r.endpoint_id, r.event_type) for r in rows] == [
        (endpoint_id, "campaign.started"),
        (endpoint_id, "campaign.paused"),
    ]  # the second endpoint hears only call.completed
    started = rows[0]
    assert started.status == WebhookDeliveryStatus.PENDING
    assert started.next_attempt_at == MONDAY_8_UTC
    assert started.payload == {
        "id": str(started.event_id),
        "type": "campaign.started",
        "created_at": MONDAY_8_UTC.isoformat(),
        "data": {"campaign_id": str(campaign_id), "status": "running"},
    }


def _pending_in(session: object) -> list[WebhookDelivery]:
    return list(session.scalars(select(WebhookDelivery)))  # type: ignore[attr-defined]


def test_a_campaign_run_announces_calls_contacts_and_its_end(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db, {}, rome_csv(6))
    account_id = _account_of(clean_db, campaign_id)
    endpoint_id, _ = _endpoint(clean_db, account_id, "https://hooks.example.com/all")
    other = setup_campaign(clean_db, {}, rome_csv(2))  # another account: none of its events
    driver = make_driver(clean_db, redis_url, now=MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    start(clean_db, other, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, timedelta(minutes=30))

    rows = _deliveries(clean_db, endpoint_id)
    kinds = [r.event_type for r in rows]
    assert kinds[0] == "campaign.started"
    assert kinds[-1] == "campaign.completed"
    calls = [r for r in rows if r.event_type == "call.completed"]
    closed = [r for r in rows if r.event_type == "contact.closed"]
    assert len(calls) >= 6
    assert len(closed) == 6  # every customer's calling ended once
    assert len({r.event_id for r in rows}) == len(rows)
    assert all(r.payload["data"]["campaign_id"] == str(campaign_id) for r in rows)
    call = calls[0].payload["data"]
    assert set(call) == {"campaign_id", "enrollment_id", "customer_id", "attempt_id",
                         "attempt_no", "status", "outcome", "finished_at"}  # fmt: skip
    assert calls[0].event_id == webhooks.event_id_for(
        WebhookEventType.CALL_COMPLETED, uuid.UUID(call["attempt_id"])
    )
    goal_met = [r for r in rows if r.event_type == "contact.goal_met"]
    met_closed = [r for r in closed if r.payload["data"]["state"] == "goal_met"]
    assert len(goal_met) == len(met_closed)
    bodies = json.dumps([r.payload for r in rows])
    assert "+390612" not in bodies  # no phone number leaves in an event


POLICY = RetryPolicy(base_seconds=60, cap_seconds=3600, max_attempts=6, disable_after=4)


def _plan(policy: RetryPolicy = POLICY) -> ticks.WebhookPlan:
    return ticks.WebhookPlan(policy=policy, batch=50, lease=timedelta(minutes=5))


def _verified(got: Received, secret: str, clock: ManualClock) -> bool:
    header = got.headers["dialer-signature"]
    return verify_signature(secret, got.body, header, now_unix=clock().timestamp())


def test_end_to_end_retries_with_backoff_then_delivers_signed(clean_db: str) -> None:
    campaign_id = setup_campaign(clean_db)
    account_id = _account_of(clean_db, campaign_id)
    clock = ManualClock(MONDAY_8_UTC)
    uow = uow_for(clean_db)
    sender = HttpWebhookSender(5, allow_private=True)
    delivered_before = metrics.sample("dialer_webhook_deliveries_total", {"result": "delivered"})
    with receiver(fail_first=2) as hook:
        endpoint_id, secret = _endpoint(clean_db, account_id, hook.url)
        start(clean_db, campaign_id, clock())

        tries_at = []
        for _ in range(40):  # ten-second ticks; time moves only here
            counts = ticks.deliver_webhooks(uow, sender, clock(), _plan(), jitter=lambda: 0.5)
            if counts:
                tries_at.append(clock())
            if hook.got and hook.got[-1].answered == 200:
                break
            clock.advance(timedelta(seconds=10))
        sender.close()

    assert [g.answered for g in hook.got] == [500, 500, 200]
    # Backoff: 45 s (60 s step, jitter 0.5) then 90 s, rounded up to the ten-second tick.
    gaps = [(b - a).total_seconds() for a, b in pairwise(tries_at)]
    assert gaps == [50.0, 90.0]
    event_ids = {g.headers["dialer-event-id"] for g in hook.got}
    assert len(event_ids) == 1  # the same event each time: receivers deduplicate on it
    assert {g.body for g in hook.got} == {hook.got[0].body}
    body = json.loads(hook.got[0].body)
    assert body["id"] == event_ids.pop()
    assert body["type"] == "campaign.started"
    assert hook.got[0].headers["dialer-event-type"] == "campaign.started"
    assert _verified(hook.got[-1], secret, clock)
    last = hook.got[-1]
    forged = verify_signature(
        "whsec_x", last.body, last.headers["dialer-signature"], clock().timestamp()
    )
    assert not forged

    (row,) = _deliveries(clean_db, endpoint_id)
    assert row.status == WebhookDeliveryStatus.DELIVERED
    assert row.attempts == 3
    assert row.last_status_code == 200
    assert [h["status_code"] for h in row.history] == [500, 500, 200]
    assert row.history[0]["error"] == "HTTP 500"
    assert row.delivered_at == tries_at[-1]
    after = metrics.sample("dialer_webhook_deliveries_total", {"result": "delivered"})
    assert after - delivered_before == 1
    with transaction(clean_db) as session:
        assert session.get_one(WebhookEndpoint, endpoint_id).consecutive_failures == 0

    # A second run finds nothing due: delivered is final.
    assert ticks.deliver_webhooks(uow, sender, clock() + timedelta(hours=1), _plan()) == {}


def test_an_endpoint_that_keeps_failing_is_disabled_then_enabled_again(clean_db: str) -> None:
    campaign_id = setup_campaign(clean_db)
    account_id = _account_of(clean_db, campaign_id)
    clock = ManualClock(MONDAY_8_UTC)
    uow = uow_for(clean_db)
    sender = HttpWebhookSender(5, allow_private=True)
    failed_before = metrics.sample("dialer_webhook_deliveries_total", {"result": "failed"})
    with receiver(always_fail=True) as hook:
        endpoint_id, secret = _endpoint(clean_db, account_id, hook.url)
        start(clean_db, campaign_id, clock())
        with transaction(clean_db) as session:
            pause_campaign(session, lock_campaign(session, campaign_id), clock())
        for _ in range(12):
            ticks.deliver_webhooks(uow, sender, clock(), _plan(), jitter=lambda: 0.0)
            clock.advance(timedelta(hours=1))

        # Two events, but a failed try makes the other wait: one try per hour, 4 in all.
        assert len(hook.got) == 4
        with transaction(clean_db) as session:
            endpoint = session.get_one(WebhookEndpoint, endpoint_id)
            assert not endpoint.enabled
            assert endpoint.consecutive_failures == 4
            assert endpoint.disabled_reason == "4 consecutive failed deliveries; last: HTTP 500"
            assert webhooks.disabled_endpoint_count(session) == 1
        assert metrics.sample("dialer_webhook_deliveries_total", {"result": "failed"}) == (
            failed_before + 4
        )
        rows = _deliveries(clean_db, endpoint_id)
        # The oldest event took every try; the other waited behind it, untried.
        assert [(r.status, r.attempts) for r in rows] == [
            (WebhookDeliveryStatus.FAILED, 4),
            (WebhookDeliveryStatus.PENDING, 0),
        ]
        # While disabled, new events are not queued for it.
        start(clean_db, campaign_id, clock())
        assert len(_deliveries(clean_db, endpoint_id)) == 2

        hook.always_fail = False
        with transaction(clean_db) as session:
            webhooks.set_enabled(session, account_id, endpoint_id, True, clock())
        clock.advance(timedelta(hours=2))
        counts = ticks.deliver_webhooks(uow, sender, clock(), _plan())
        sender.close()
    assert counts == {"delivered": 2}
    assert all(_verified(g, secret, clock) for g in hook.got[-2:])
    assert {r.status for r in _deliveries(clean_db, endpoint_id)} == {
        WebhookDeliveryStatus.DELIVERED
    }


def test_a_delivery_is_dead_after_its_last_try(clean_db: str) -> None:
    campaign_id = setup_campaign(clean_db)
    account_id = _account_of(clean_db, campaign_id)
    clock = ManualClock(MONDAY_8_UTC)
    sender = HttpWebhookSender(5, allow_private=True)
    policy = RetryPolicy(base_seconds=60, cap_seconds=60, max_attempts=3, disable_after=100)
    with receiver(always_fail=True) as hook:
        endpoint_id, _ = _endpoint(clean_db, account_id, hook.url)
        start(clean_db, campaign_id, clock())
        for _ in range(10):
            ticks.deliver_webhooks(uow_for(clean_db), sender, clock(), _plan(policy))
            clock.advance(timedelta(minutes=5))
        sender.close()
    assert len(hook.got) == 3
    (row,) = _deliveries(clean_db, endpoint_id)
    assert row.status == WebhookDeliveryStatus.DEAD
    assert row.next_attempt_at is None
    assert row.attempts == 3


def test_the_sender_refuses_private_addresses_unless_allowed(clean_db: str) -> None:
    strict = HttpWebhookSender(1, allow_private=False)
    result = strict.send("http://127.0.0.1:9/hooks", {}, b"{}")
    assert result.status_code is None
    assert result.error is not None
    assert "private" in result.error
    public_name_to_private = HttpWebhookSender(
        1, allow_private=False, resolve=lambda *a, **k: [(2, 1, 6, "", ("10.0.0.5", 443))]
    )
    refused = public_name_to_private.send("https://hooks.example.com/x", {}, b"{}")
    assert refused.error == "refused: 10.0.0.5 is a private, loopback or reserved address"
    with transaction(clean_db) as session:
        account_id = session.get_one(Campaign, setup_campaign(clean_db)).account_id
    with transaction(clean_db) as session, pytest.raises(Exception, match="private"):
        webhooks.create_endpoint(
            session, account_id, "http://10.0.0.1/x", ["call.completed"], allow_private=False
        )


def test_a_claimed_delivery_is_leased_then_claimed_again_if_never_recorded(clean_db: str) -> None:
    """Two ticks at once send an event once; a sender that died sends it again, later."""
    campaign_id = setup_campaign(clean_db)
    _endpoint(clean_db, _account_of(clean_db, campaign_id), "https://hooks.example.com/x")
    start(clean_db, campaign_id, MONDAY_8_UTC)
    lease = timedelta(minutes=5)
    with transaction(clean_db) as session:
        (job,) = claim_due(session, MONDAY_8_UTC, 10, lease)
    with transaction(clean_db) as session:
        assert claim_due(session, MONDAY_8_UTC + timedelta(minutes=4), 10, lease) == []
    with transaction(clean_db) as session:
        (again,) = claim_due(session, MONDAY_8_UTC + lease, 10, lease)
    assert (again.delivery_id, again.event_id, again.body) == (
        job.delivery_id,
        job.event_id,
        job.body,
    )
