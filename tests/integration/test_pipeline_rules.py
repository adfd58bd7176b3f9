"""Each rule of GUIDE sections 3-4, proved end to end on real PostgreSQL and Redis.

The in-process driver runs the real pipeline duties on a manual clock (no Celery,
no sleeps). Where a rule is about a race or a lost message, the test drives the
service that owns it directly (dispatch twice, two scans at once, a dropped event).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from dialer.policies.status import map_provider_status
from dialer.policies.vocabulary import MessagePurpose, ProviderCallStatus, Segment
from dialer.providers.base import InboundMessage
from dialer.providers.events import call_status_event, event_payload, inbound_message_event
from dialer.services.attempts import queue_message
from dialer.services.dispatch import Verdict, dispatch_attempt
from dialer.services.inbox import ingest, take_in
from dialer.services.lifecycle import (
    ResumeResult,
    complete_campaign,
    lock_campaign,
    pause_campaign,
    resume_campaign,
    resume_counts,
)
from models import CallAttempt, Campaign, Customer, Enrollment
from models.session import transaction
from scheduler.scan import scan_campaign
from scheduler.ticks import ReapLimits
from tests.integration.pipeline_support import (
    LEGAL,
    MONDAY_8_UTC,
    attempts_of,
    by_enrollment,
    campaign_status,
    count_place_calls,
    customers_csv,
    enrollments_of,
    make_driver,
    messages_of,
    pin_enrollment_ids,
    relay,
    reset_campaign,
    rome_csv,
    rome_phone,
    run_to_done,
    setup_campaign,
    start,
)

T = TypeVar("T")

ONE_MINUTE = timedelta(minutes=1)
TEN_MINUTES = timedelta(minutes=10)
ROME = ZoneInfo("Europe/Rome")
NO_WHATSAPP: dict[str, Any] = {"whatsapp_channel": None, "whatsapp_first_message": None}
AI_GOAL: dict[str, Any] = {
    "objectives": [{"type": "ai", "label_in": ["positive"], "min_score": 0.5}]
}
WHATSAPP_REPLY_GOAL: dict[str, Any] = {
    "objectives": [{"type": "contact", "channels": ["whatsapp"]}]
}
NOBODY_ANSWERS: dict[str, Any] = {
    "answer_rate": 0.0,
    "voicemail_rate": 0.0,
    "failure_rate": 0.0,
    "busy_rate": 0.5,
    "no_answer_rate": 0.5,
    "whatsapp_reply_rate": 0.0,
}
POSITIVE_ONLY: dict[str, Any] = {"positive_rate": 1.0, "neutral_rate": 0.0, "negative_rate": 0.0}
EVERYONE_ANSWERS: dict[str, Any] = {
    "answer_rate": 1.0,
    "voicemail_rate": 0.0,
    "failure_rate": 0.0,
    "busy_rate": 0.0,
    "no_answer_rate": 0.0,
    "whatsapp_reply_rate": 0.0,
}
# Limits that leave everything alone unless a test lowers one of them.
REAP_NOTHING = ReapLimits(
    queued=timedelta(days=1),
    dispatching=timedelta(days=1),
    max_call=timedelta(days=1),
    inbox_retry_seconds=86_400.0,
)
OPEN_STATUSES = ("pending", "queued", "dispatching", "in_progress")


def resume(url: str, campaign_id: uuid.UUID, segment: str, now: datetime) -> dict[str, object]:
    with transaction(url) as session:
        result: ResumeResult = resume_campaign(
            session, lock_campaign(session, campaign_id), Segment(segment), now
        )
        return resume_counts(result)


def control(
    url: str, campaign_id: uuid.UUID, action: Callable[..., Campaign], now: datetime
) -> None:
    with transaction(url) as session:
        action(session, lock_campaign(session, campaign_id), now)


def claim(url: str, campaign_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    """A beat's scan without its enqueue: the claimed attempts wait in `queued`."""
    with transaction(url) as session:
        return scan_campaign(session, campaign_id, now, LEGAL, 500).claimed


def in_threads(*calls: Callable[[], T]) -> list[T]:
    """Run the calls at the same moment, one thread each; re-raise the first failure."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # handed to the main thread below
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def states(url: str, campaign_id: uuid.UUID) -> dict[uuid.UUID, str]:
    return {e.id: e.state for e in enrollments_of(url, campaign_id)}


def dispatched(attempts: list[CallAttempt]) -> list[CallAttempt]:
    return [a for a in attempts if a.dispatched_at is not None]


def dispatch_times(attempts: list[CallAttempt]) -> list[datetime]:
    return [a.dispatched_at for a in attempts if a.dispatched_at is not None]


# --------------------------------------------------------------------------- 1. goals


def test_ai_goal_met_stops_calls_and_negative_answer_ends_unresolved(
    clean_db: str, redis_url: str
) -> None:
    # Outcomes are drawn per attempt id (a fresh uuid each run): with 60 contacts each
    # branch below occurs ~17 times on average, and missing one is ~1e-9 (24 contacts
    # once missed "positive but scored low" in CI, ~4e-4).
    campaign_id = setup_campaign(clean_db, {"goal_spec": AI_GOAL, **NO_WHATSAPP}, rome_csv(60))
    driver = make_driver(
        clean_db,
        redis_url,
        {
            **NOBODY_ANSWERS,
            "answer_rate": 0.6,
            "positive_rate": 0.6,
            "neutral_rate": 0.2,
            "positive_score": (0.1, 0.9),  # some positive answers score under min_score
        },
        MONDAY_8_UTC,
    )
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)

    attempts = by_enrollment(attempts_of(clean_db, campaign_id))
    ends: Counter[str] = Counter()
    for enrollment in enrollments_of(clean_db, campaign_id):
        tries = attempts[enrollment.id]
        answered = [a for a in tries if a.outcome == "answered"]
        if not answered:
            assert enrollment.state == "not_answered"
            continue
        call = answered[0]
        assert tries[-1].id == call.id, "no attempt after an answered call"
        met = call.customer_sentiment == "positive" and (call.agent_goal_score or 0) >= 0.5
        assert enrollment.state == ("goal_met" if met else "unresolved")
        assert enrollment.goal_result is not None
        assert enrollment.goal_result["met"] is met
        positive = call.customer_sentiment == "positive"
        ends[enrollment.state if met or not positive else "positive_but_low"] += 1
    assert ends.keys() == {"goal_met", "unresolved", "positive_but_low"}  # all branches ran


def test_goal_met_by_a_call_cancels_the_enrollments_pending_message(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {"goal_spec": AI_GOAL}, rome_csv(4))
    driver = make_driver(clean_db, redis_url, {**EVERYONE_ANSWERS, **POSITIVE_ONLY}, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()  # the four calls are on the line
    with transaction(clean_db) as session:
        campaign = session.get_one(Campaign, campaign_id)
        assert campaign.fallback_channel_id is not None
        for enrollment in session.scalars(
            select(Enrollment).where(Enrollment.campaign_id == campaign_id)
        ):
            later = MONDAY_8_UTC + timedelta(days=1)
            assert queue_message(
                session,
                enrollment,
                campaign.fallback_channel,
                campaign.fallback_channel_id,
                MessagePurpose.FALLBACK,
                "Hi",
                later,
            )
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)

    assert set(states(clean_db, campaign_id).values()) == {"goal_met"}
    messages = messages_of(clean_db, campaign_id)
    assert len(messages) == 4
    assert {(m.status, m.error) for m in messages} == {("canceled", "goal met")}
    assert driver.messages.sent_messages() == []


def test_goal_met_by_a_whatsapp_reply_cancels_the_pending_call(
    clean_db: str, redis_url: str
) -> None:
    spec = {
        "goal_spec": {"objectives": [*AI_GOAL["objectives"], *WHATSAPP_REPLY_GOAL["objectives"]]},
        "goal_logic": "any",
        "whatsapp_after_attempts": 1,
    }
    campaign_id = setup_campaign(clean_db, spec, rome_csv(4))
    driver = make_driver(
        clean_db,
        redis_url,
        {
            **NOBODY_ANSWERS,
            "whatsapp_reply_rate": 1.0,
            "stop_reply_rate": 0.0,
            "reply_delay_seconds": (60.0, 120.0),
        },
        MONDAY_8_UTC,
    )
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)

    assert set(states(clean_db, campaign_id).values()) == {"goal_met"}
    for tries in by_enrollment(attempts_of(clean_db, campaign_id)).values():
        assert [a.attempt_no for a in dispatched(tries)] == [1]
        assert [(a.status, a.last_error) for a in tries[1:]] == [("canceled", "goal met")]


def test_a_reply_that_quotes_nothing_still_counts_for_the_conversation_we_started(
    clean_db: str, redis_url: str
) -> None:
    """WhatsApp sets context.id only on a swipe-reply: our last message to the number decides."""
    spec = {"goal_spec": WHATSAPP_REPLY_GOAL, "whatsapp_after_attempts": 1}
    campaign_id = setup_campaign(clean_db, spec, rome_csv(1))
    driver = make_driver(clean_db, redis_url, {**NOBODY_ANSWERS, "whatsapp_reply_rate": 0.0})
    start(clean_db, campaign_id, MONDAY_8_UTC)
    for _ in range(40):
        driver.tick()
        driver.clock.advance(TEN_MINUTES)
        if any(m.sent_at for m in messages_of(clean_db, campaign_id)):
            break
    (sent,) = [m for m in messages_of(clean_db, campaign_id) if m.sent_at]
    assert sent.to_address is not None
    reply = InboundMessage("whatsapp", sent.to_address, "yes, call me", "wamid.unquoted")
    payload = event_payload(inbound_message_event(reply, driver.clock()))
    ingest(driver.uow, "simulated", driver.voice.parse_event, payload, driver.clock())

    assert set(states(clean_db, campaign_id).values()) == {"goal_met"}


# --------------------------------------------------------------------------- 2. fallback


@pytest.mark.parametrize("has_whatsapp", [True, False], ids=["whatsapp", "no_channel"])
def test_whatsapp_fallback_once_after_n_unanswered_then_calls_continue(
    clean_db: str, redis_url: str, has_whatsapp: bool
) -> None:
    spec = {"whatsapp_after_attempts": 1} | ({} if has_whatsapp else NO_WHATSAPP)
    campaign_id = setup_campaign(clean_db, spec, rome_csv(6))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)

    attempts = by_enrollment(attempts_of(clean_db, campaign_id))
    messages = messages_of(clean_db, campaign_id)
    if not has_whatsapp:
        assert messages == []
        assert driver.messages.sent_messages() == []
    else:
        assert Counter(m.enrollment_id for m in messages) == Counter(dict.fromkeys(attempts, 1))
    for message in messages:
        tries = attempts[message.enrollment_id]
        assert message.purpose == "fallback"
        assert message.sent_at is not None
        assert tries[0].finished_at is not None
        assert tries[0].finished_at <= message.sent_at  # after the first unanswered call
        later = [a for a in tries if a.dispatched_at and a.dispatched_at > message.sent_at]
        assert len(later) == 2  # the remaining attempts still ran
    for tries in attempts.values():
        assert len(dispatched(tries)) == 3
    assert set(states(clean_db, campaign_id).values()) == {"not_answered"}


# --------------------------------------------------------------------------- 3. whatsapp first


def test_whatsapp_first_contact_then_calls_after_first_delay_and_reply_meets_goal(
    clean_db: str, redis_url: str
) -> None:
    spec = {"first_contact_channel": "whatsapp", "goal_spec": WHATSAPP_REPLY_GOAL}
    # Half reply, drawn per message id: with 30 contacts both ends occur (miss ~2e-9).
    campaign_id = setup_campaign(clean_db, spec, rome_csv(30))
    driver = make_driver(
        clean_db,
        redis_url,
        {
            **NOBODY_ANSWERS,
            "whatsapp_reply_rate": 0.5,
            "stop_reply_rate": 0.0,
            "reply_delay_seconds": (60.0, 600.0),
        },
        MONDAY_8_UTC,
    )
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)

    attempts = by_enrollment(attempts_of(clean_db, campaign_id))
    first = {
        m.enrollment_id: m for m in messages_of(clean_db, campaign_id) if m.direction == "outbound"
    }
    final = states(clean_db, campaign_id)
    assert set(first) == set(final)
    ledger_keys = set(driver.voice.ledger_count_by_key())
    for enrollment_id, state in final.items():
        message, tries = first[enrollment_id], attempts[enrollment_id]
        assert message.purpose == "first_contact"
        assert message.sent_at is not None
        call_one = tries[0]
        assert call_one.attempt_no == 1
        # delays[0] = 60 minutes after the message; the window was open then.
        assert call_one.scheduled_at == message.sent_at + timedelta(minutes=60)
        if state == "goal_met":
            assert dispatched(tries) == []
            assert not {a.idempotency_key for a in tries} & ledger_keys
        else:
            assert state == "not_answered"
            assert min(dispatch_times(tries)) >= call_one.scheduled_at
    assert Counter(final.values()).keys() == {"goal_met", "not_answered"}


# --------------------------------------------------------------------------- 4. resume


def test_resume_per_segment_selects_schedules_and_counts(clean_db: str, redis_url: str) -> None:
    invalid = ["+390612340000", "+390612350000"]
    spec = {"goal_spec": AI_GOAL, "call_attempt_delays": [10, 20], **NO_WHATSAPP}
    campaign_id = setup_campaign(clean_db, spec, rome_csv(24, *invalid, None))
    # Pinned: with random enrollment ids (so random call keys) a state below was
    # missing in ~0.07 % of runs (the one CI failure); pinned, these draws hold all five.
    pin_enrollment_ids(clean_db, campaign_id)
    mixed = {
        **NOBODY_ANSWERS,
        "answer_rate": 0.3,
        "positive_rate": 0.5,
        "neutral_rate": 0.0,
        "negative_rate": 0.5,
    }
    driver = make_driver(clean_db, redis_url, mixed, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)
    assert set(states(clean_db, campaign_id).values()) == {
        "goal_met",
        "unresolved",
        "not_answered",
        "failed",
        "missing_contact",
    }

    # Each round gets its own simulated world: who answers is the test's choice.
    rounds: list[tuple[str, dict[str, Any], str]] = [
        ("not_answered", NOBODY_ANSWERS, "not_answered"),
        ("unresolved", {**EVERYONE_ANSWERS, **POSITIVE_ONLY}, "goal_met"),
        ("failed", NOBODY_ANSWERS, "failed"),
    ]
    for segment, profile, ends_as in rounds:
        before = {a.id for a in attempts_of(clean_db, campaign_id)}
        was = states(clean_db, campaign_id)
        selected = sorted(e for e, state in was.items() if state == segment)
        driver = make_driver(clean_db, redis_url, profile, driver.clock())
        counts = resume(clean_db, campaign_id, segment, driver.clock())

        assert counts == {
            "segment": segment,
            "selected_targets": len(selected),
            "scheduled_calls": len(selected),
            "queued_whatsapp": 0,
            "skipped_existing_pending": 0,
            "skipped_missing_contact": 0,
        }
        assert campaign_status(clean_db, campaign_id) == "running"
        new = [a for a in attempts_of(clean_db, campaign_id) if a.id not in before]
        assert sorted(a.enrollment_id for a in new) == selected
        assert {a.status for a in new} == {"pending"}

        run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)
        now = states(clean_db, campaign_id)
        new_round = Counter(
            a.enrollment_id for a in attempts_of(clean_db, campaign_id) if a.id not in before
        )
        for enrollment_id, state in was.items():
            if enrollment_id in selected:
                assert now[enrollment_id] == ends_as
            else:
                assert now[enrollment_id] == state
                assert new_round[enrollment_id] == 0
        if segment == "not_answered":  # a fresh round: all len(delays) + 1 attempts again
            assert set(new_round.values()) == {3}
        else:
            assert set(new_round.values()) == {1}

    # not_contacted: only the customer without a phone was never tried, and cannot be.
    counts = resume(clean_db, campaign_id, "not_contacted", driver.clock())
    assert counts["selected_targets"] == 1
    assert counts["skipped_missing_contact"] == 1
    assert counts["scheduled_calls"] == counts["skipped_existing_pending"] == 0


def test_resume_of_a_whatsapp_first_campaign_counts_what_it_queued(
    clean_db: str, redis_url: str
) -> None:
    spec = {"first_contact_channel": "whatsapp", "call_attempt_delays": [10]}
    campaign_id = setup_campaign(clean_db, spec, rome_csv(3))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)
    assert set(states(clean_db, campaign_id).values()) == {"not_answered"}

    # The first WhatsApp went out once per enrollment; a new round starts with a call.
    counts = resume(clean_db, campaign_id, "not_answered", driver.clock())
    assert (counts["selected_targets"], counts["scheduled_calls"], counts["queued_whatsapp"]) == (
        3,
        3,
        0,
    )
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES, max_ticks=100)
    for tries in by_enrollment(attempts_of(clean_db, campaign_id)).values():
        assert len(dispatched(tries)) == 4  # two per round
    assert len(driver.messages.sent_messages()) == 3


def test_resume_counts_open_attempts_as_skipped_and_reschedules_canceled_ones(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 2}, rome_csv(6))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()  # two calls on the line, four waiting
    control(clean_db, campaign_id, complete_campaign, driver.clock())

    counts = resume(clean_db, campaign_id, "not_contacted", driver.clock())
    assert counts == {
        "segment": "not_contacted",
        "selected_targets": 6,
        "scheduled_calls": 4,
        "queued_whatsapp": 0,
        "skipped_existing_pending": 2,
        "skipped_missing_contact": 0,
    }
    open_now = Counter(
        a.status for a in attempts_of(clean_db, campaign_id) if a.status in OPEN_STATUSES
    )
    assert open_now == Counter({"in_progress": 2, "pending": 4})
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)
    assert set(states(clean_db, campaign_id).values()) == {"goal_met"}
    assert set(driver.voice.ledger_count_by_key().values()) == {1}
    assert len(driver.voice.ledger()) == 6


# --------------------------------------------------------------------------- 5. pause, complete


def test_pause_stops_new_dispatches_and_start_resumes_them(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 3}, rome_csv(9))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    for _ in range(3):
        driver.tick()
        driver.clock.advance(ONE_MINUTE)
    paused_at = driver.clock()
    control(clean_db, campaign_id, pause_campaign, paused_at)
    for _ in range(18):  # three hours, all inside Rome's window (09:00-19:00)
        driver.clock.advance(TEN_MINUTES)
        driver.tick()

    attempts = attempts_of(clean_db, campaign_id)
    assert campaign_status(clean_db, campaign_id) == "paused"
    assert dispatch_times(attempts)
    assert max(dispatch_times(attempts)) < paused_at
    assert any(a.status == "pending" for a in attempts)  # work waits, not canceled
    assert not any(a.status in ("queued", "dispatching", "in_progress") for a in attempts)

    resumed_at = driver.clock()
    start(clean_db, campaign_id, resumed_at)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)
    assert max(dispatch_times(attempts_of(clean_db, campaign_id))) >= resumed_at
    assert set(states(clean_db, campaign_id).values()) == {"not_answered"}


def test_complete_cancels_pending_and_records_calls_in_flight(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 16}, rome_csv(18))
    half_answer = {**NOBODY_ANSWERS, "answer_rate": 0.5, "no_answer_rate": 0.0}
    driver = make_driver(clean_db, redis_url, half_answer, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()
    control(clean_db, campaign_id, complete_campaign, driver.clock())
    attempts = attempts_of(clean_db, campaign_id)
    assert Counter(a.status for a in attempts) == Counter({"in_progress": 16, "canceled": 2})

    for _ in range(12):  # the calls on the line end within ten minutes
        driver.clock.advance(ONE_MINUTE)
        driver.tick()
    attempts = attempts_of(clean_db, campaign_id)
    recorded = dispatched(attempts)
    assert len(recorded) == 16
    assert {a.outcome for a in recorded} == {"answered", "busy"}
    for attempt in recorded:
        assert attempt.status == "completed"
        assert attempt.duration_seconds is not None
        assert attempt.cost_millicents is not None
        assert attempt.ended_at == attempt.finished_at
    # Nothing new was planned for a done campaign: no next call, no WhatsApp fallback.
    assert len(attempts) == 18
    assert messages_of(clean_db, campaign_id) == []
    assert campaign_status(clean_db, campaign_id) == "done"
    assert len(driver.voice.ledger()) == 16
    final = states(clean_db, campaign_id)
    for attempt in recorded:  # the default goal: contacted once
        expected = "goal_met" if attempt.outcome == "answered" else "not_answered"
        assert final[attempt.enrollment_id] == expected
    assert "active" not in final.values()

    # The canceled ones were never contacted: resume reaches them, and the campaign ends.
    counts = resume(clean_db, campaign_id, "not_contacted", driver.clock())
    assert (counts["selected_targets"], counts["scheduled_calls"]) == (2, 2)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES, max_ticks=100)
    assert len(driver.voice.ledger()) > 16


def test_complete_between_retries_leaves_nothing_active_and_resume_finishes(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(4))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()
    driver.clock.advance(TEN_MINUTES)
    driver.tick()  # the first calls went unanswered; the second ones wait an hour
    assert Counter(a.status for a in attempts_of(clean_db, campaign_id)) == Counter(
        {"completed": 4, "pending": 4}
    )
    control(clean_db, campaign_id, complete_campaign, driver.clock())
    assert set(states(clean_db, campaign_id).values()) == {"not_answered"}

    counts = resume(clean_db, campaign_id, "not_answered", driver.clock())
    assert (counts["selected_targets"], counts["scheduled_calls"]) == (4, 4)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES, max_ticks=100)
    for tries in by_enrollment(attempts_of(clean_db, campaign_id)).values():
        # call 1, the canceled call 2, then a fresh round of three
        assert [a.status for a in tries] == ["completed", "canceled", *["completed"] * 3]
    assert set(states(clean_db, campaign_id).values()) == {"not_answered"}


# --------------------------------------------------------------------------- 6. caps


def test_concurrency_and_daily_cap_are_never_exceeded(clean_db: str, redis_url: str) -> None:
    phones = (
        [f"+1212555{100 + n:04d}" for n in range(20)]
        + [rome_phone(n) for n in range(20)]
        + [f"+81312345{600 + n:03d}" for n in range(20)]
    )
    campaign_id = setup_campaign(
        clean_db, {"concurrency": 3, "max_calls_per_day": 20}, customers_csv(phones)
    )
    long_calls = {
        **NOBODY_ANSWERS,
        "answer_rate": 0.3,
        "busy_rate": 0.0,
        "ring_seconds": (120.0, 240.0),
        "answered_seconds": (120.0, 600.0),
    }
    # Monday 23:45 in Rome: New York is open, and Rome's day turns at 23:00 UTC.
    monday_late = MONDAY_8_UTC.replace(hour=22, minute=45)
    driver = make_driver(clean_db, redis_url, long_calls, monday_late)
    start(clean_db, campaign_id, monday_late)

    in_flight_seen: list[int] = []
    claimed_on: dict[uuid.UUID, datetime] = {}  # first claim of each attempt
    until = monday_late + timedelta(days=2)
    while driver.clock() < until:
        driver.tick()
        with transaction(clean_db) as session:
            rows = session.execute(
                select(CallAttempt.id, CallAttempt.status, CallAttempt.queued_at).where(
                    CallAttempt.campaign_id == campaign_id, CallAttempt.queued_at.is_not(None)
                )
            ).all()
        flying = [r for r in rows if r.status in ("queued", "dispatching", "in_progress")]
        in_flight_seen.append(len(flying))
        for attempt_id, _, queued_at in rows:
            claimed_on.setdefault(attempt_id, queued_at)
        # Minute steps while calls overlap; hour steps while the day's cap or the windows wait.
        driver.clock.advance(ONE_MINUTE if flying else timedelta(hours=1))

    per_day = Counter(at.astimezone(ROME).date() for at in claimed_on.values())
    placed_per_day = Counter(
        datetime.fromisoformat(e["placed_at"]).astimezone(ROME).date()
        for e in driver.voice.ledger()
    )
    assert max(in_flight_seen) == 3  # the cap was reached, and never passed
    monday, tuesday = monday_late.astimezone(ROME).date(), monday_late.date() + timedelta(days=1)
    assert 0 < per_day[monday] < 20  # Monday's last minutes, then a new local day
    assert per_day[tuesday] == 20
    assert len(per_day) == 3
    assert max(per_day.values()) == 20
    assert max(placed_per_day.values()) == 20
    assert sum(placed_per_day.values()) == len(driver.voice.ledger())


# --------------------------------------------------------------------------- 7. dispatch twice


def test_a_dispatch_delivered_twice_places_one_call(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 5}, rome_csv(5))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    requests = count_place_calls(driver.voice)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)
    claimed = claim(clean_db, campaign_id, driver.clock())
    assert len(claimed) == 5

    def send(attempt_id: uuid.UUID) -> Verdict:
        report = dispatch_attempt(
            driver.uow, driver.voice, attempt_id, driver.clock(), driver.limits
        )
        return report.verdict

    one, *others = claimed
    verdicts = {one: [send(one), send(one)]}
    assert verdicts[one] == [Verdict.PLACED, Verdict.NOT_QUEUED]
    for attempt_id in others:  # the same task delivered to two workers at once
        verdicts[attempt_id] = in_threads(
            lambda a=attempt_id: send(a), lambda a=attempt_id: send(a)
        )

    ledger = driver.voice.ledger()
    assert sorted(driver.voice.ledger_count_by_key().values()) == [1] * 5
    conv_ids = {e["idempotency_key"]: e["call_id"] for e in ledger}
    for attempt in attempts_of(clean_db, campaign_id):
        pair = verdicts[attempt.id]
        assert Verdict.PLACED in pair
        assert set(pair) <= {Verdict.PLACED, Verdict.NOT_QUEUED}
        assert attempt.status == "in_progress"
        assert attempt.conv_id == conv_ids[attempt.idempotency_key]
        # Every hand-off to the provider is counted, and only those.
        assert attempt.delivery_attempts == requests[attempt.idempotency_key]
        assert attempt.delivery_attempts == pair.count(Verdict.PLACED)


# --------------------------------------------------------------------------- 8. two scans


def queued_ids(url: str, campaign_id: uuid.UUID) -> set[uuid.UUID]:
    with transaction(url) as session:
        return set(
            session.scalars(
                select(CallAttempt.id).where(
                    CallAttempt.campaign_id == campaign_id, CallAttempt.status == "queued"
                )
            )
        )


def test_two_scans_at_once_claim_each_attempt_once(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 3}, rome_csv(12))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)
    now = driver.clock()

    # The worst interleaving, forced: the second scan runs while the first one has
    # claimed but not committed (its claims are invisible to the second one).
    first_claimed, second_done = threading.Event(), threading.Event()

    def first_scan() -> list[uuid.UUID]:
        with transaction(clean_db) as session:
            claimed = scan_campaign(session, campaign_id, now, LEGAL, 500).claimed
            first_claimed.set()
            second_done.wait(timeout=10)
        return claimed

    def second_scan() -> list[uuid.UUID]:
        first_claimed.wait(timeout=10)
        try:
            return claim(clean_db, campaign_id, now)
        finally:
            second_done.set()

    first, second = in_threads(first_scan, second_scan)
    assert (len(first), second) == (3, [])
    assert queued_ids(clean_db, campaign_id) == set(first)

    # And a free-running race, a few times: never more claims than free slots.
    with transaction(clean_db) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.campaign_id == campaign_id)
            .values(status="pending", queued_at=None)
        )
    for _ in range(3):
        first, second = in_threads(*[lambda: claim(clean_db, campaign_id, now)] * 2)
        union = first + second
        assert len(union) == len(set(union))
        assert set(union) <= queued_ids(clean_db, campaign_id)
    assert len(queued_ids(clean_db, campaign_id)) == 3


# --------------------------------------------------------------------------- 9. window at dispatch


def test_an_attempt_whose_window_closed_in_the_queue_is_not_dialed(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(2))
    last_minute = MONDAY_8_UTC.replace(hour=17, minute=59)  # 18:59 in Rome, window ends 19:00
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, last_minute)
    start(clean_db, campaign_id, last_minute)
    relay(driver)
    claimed = claim(clean_db, campaign_id, last_minute)
    assert len(claimed) == 2

    driver.clock.advance(timedelta(minutes=2))  # 19:01 in Rome
    for attempt_id in claimed:
        report = dispatch_attempt(
            driver.uow, driver.voice, attempt_id, driver.clock(), driver.limits
        )
        assert report.verdict is Verdict.DEFERRED
    tuesday_opening = MONDAY_8_UTC + timedelta(days=1)  # Tuesday 09:00 in Rome
    for attempt in attempts_of(clean_db, campaign_id):
        assert (attempt.status, attempt.scheduled_at) == ("pending", tuesday_opening)
        assert attempt.dispatched_at is None
    assert driver.voice.ledger() == []


# --------------------------------------------------------------------------- 10. duplicates


def _final_rows(url: str, campaign_id: uuid.UUID) -> dict[str, tuple[object, ...]]:
    return {
        a.idempotency_key: (
            a.status,
            a.outcome,
            a.duration_seconds,
            a.billable_seconds,
            a.cost_millicents,
            a.ended_at,
            a.finished_at,
            a.customer_sentiment,
        )
        for a in attempts_of(url, campaign_id)
    }


def test_results_delivered_twice_and_out_of_order_end_in_the_same_state(
    clean_db: str, redis_url: str
) -> None:
    # Room for every call at once: which calls wait for a slot would differ between runs.
    campaign_id = setup_campaign(clean_db, {"concurrency": 10, **NO_WHATSAPP}, rome_csv(8))
    mixed = {**NOBODY_ANSWERS, "answer_rate": 0.4, "voicemail_rate": 0.2}
    runs = []
    for faults in ({}, {"duplicate_event_rate": 1.0, "reorder_rate": 1.0}):
        reset_campaign(clean_db, campaign_id)
        driver = make_driver(clean_db, redis_url, {**mixed, **faults}, MONDAY_8_UTC)
        start(clean_db, campaign_id, MONDAY_8_UTC)
        run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)
        runs.append((_final_rows(clean_db, campaign_id), states(clean_db, campaign_id), driver))
    (clean_rows, clean_states, _), (faulty_rows, faulty_states, faulty) = runs
    assert faulty.stats["duplicate"] > 0  # the faults happened
    assert faulty_rows == clean_rows
    assert faulty_states == clean_states


def test_terminal_then_ringing_then_terminal_again_stays_completed(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(1))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()
    (attempt,) = attempts_of(clean_db, campaign_id)
    assert attempt.conv_id is not None
    driver.clock.advance(timedelta(hours=1))
    assert driver.voice.pop_due_events(driver.clock(), 100)  # delivered by hand below
    final = driver.voice.get_call(attempt.conv_id)
    assert final.ringing_at is not None
    ringing = driver.voice._load_plan(attempt.conv_id).record_at(final.ringing_at)
    assert ringing.status == ProviderCallStatus.RINGING

    def feed(record: Any) -> str:
        payload = event_payload(call_status_event(record))
        return ingest(driver.uow, "simulated", driver.voice.parse_event, payload, driver.clock())

    assert [feed(final), feed(ringing), feed(final)] == ["applied", "unchanged", "duplicate"]
    (attempt,) = attempts_of(clean_db, campaign_id)
    assert (attempt.status, attempt.outcome, attempt.provider_status) == (
        "completed",
        "answered",
        "completed",
    )


# --------------------------------------------------------------------------- 11. transient errors


def test_transient_errors_are_retried_counted_and_never_double_dial(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(10))
    driver = make_driver(
        clean_db, redis_url, {**NOBODY_ANSWERS, "transient_error_rate": 0.5}, MONDAY_8_UTC
    )
    driver.max_tries = 2
    requests = count_place_calls(driver.voice)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)

    attempts = by_enrollment(attempts_of(clean_db, campaign_id))
    assert set(driver.voice.ledger_count_by_key().values()) == {1}
    gave_up = 0
    for tries in attempts.values():
        for attempt in tries:
            assert attempt.delivery_attempts == requests[attempt.idempotency_key]
            assert 1 <= attempt.delivery_attempts <= 2
            if attempt.conv_id is None:  # never reached the provider: out of tries
                gave_up += 1
                assert (attempt.status, attempt.outcome) == ("failed", "failed")
                assert attempt.delivery_attempts == 2
                assert (attempt.last_error or "").startswith("gave up after 2 tries: ")
        # A failed hand-off is an unanswered attempt: the retry plan carried on.
        assert [a.attempt_no for a in tries] == [1, 2, 3]
    assert gave_up > 0
    assert any(a.delivery_attempts == 2 and a.conv_id for t in attempts.values() for a in t)
    assert set(states(clean_db, campaign_id).values()) == {"not_answered"}


# --------------------------------------------------------------------------- 12. STOP


def test_stop_reply_opts_out_cancels_pending_and_no_call_follows(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {"whatsapp_after_attempts": 1}, rome_csv(4))
    driver = make_driver(
        clean_db,
        redis_url,
        {
            **NOBODY_ANSWERS,
            "whatsapp_reply_rate": 1.0,
            "stop_reply_rate": 1.0,
            "reply_delay_seconds": (60.0, 120.0),
        },
        MONDAY_8_UTC,
    )
    start(clean_db, campaign_id, MONDAY_8_UTC)
    all_opted_out = lambda: set(states(clean_db, campaign_id).values()) == {"opted_out"}  # noqa: E731
    driver.run_until(all_opted_out, ONE_MINUTE, max_ticks=60)

    # At once: the second calls (due an hour after the first) are canceled, not just skipped.
    attempts = by_enrollment(attempts_of(clean_db, campaign_id))
    for tries in attempts.values():
        assert [a.status for a in tries] == ["completed", "canceled"]
        assert tries[1].last_error == "customer opted out"
        assert tries[1].scheduled_at > driver.clock()
    with transaction(clean_db) as session:
        assert session.scalars(select(Customer.opted_out)).all() == [True] * 4

    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES, max_ticks=100)
    driver.clock.advance(timedelta(days=1))
    driver.tick()
    replies = {
        m.enrollment_id: m for m in messages_of(clean_db, campaign_id) if m.purpose == "reply"
    }
    assert set(replies) == set(attempts)
    for enrollment_id, tries in by_enrollment(attempts_of(clean_db, campaign_id)).items():
        assert replies[enrollment_id].body == "STOP"
        assert len(tries) == 2
        sent_at = replies[enrollment_id].sent_at
        assert sent_at is not None
        assert max(dispatch_times(tries)) < sent_at
    assert len(driver.voice.ledger()) == 4


# --------------------------------------------------------------------------- 13. invalid numbers


def test_invalid_numbers_fail_once_without_retry(clean_db: str, redis_url: str) -> None:
    invalid = ["+390612340000", "+390612350000", "+12125550000"]
    campaign_id = setup_campaign(clean_db, {}, rome_csv(2, *invalid))
    driver = make_driver(clean_db, redis_url, NOBODY_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, TEN_MINUTES)

    with transaction(clean_db) as session:
        phone_of = dict(
            session.execute(
                select(Enrollment.id, Customer.phone).join(
                    Customer, Customer.id == Enrollment.customer_id
                )
            ).all()
        )
    final = states(clean_db, campaign_id)
    messages = Counter(m.enrollment_id for m in messages_of(clean_db, campaign_id))
    for enrollment_id, tries in by_enrollment(attempts_of(clean_db, campaign_id)).items():
        if phone_of[enrollment_id] in invalid:
            (attempt,) = tries
            assert (attempt.status, attempt.outcome) == ("failed", "failed")
            assert attempt.provider_error_code == "invalid_number"
            assert final[enrollment_id] == "failed"
            assert messages[enrollment_id] == 0
        else:
            assert len(tries) == 3
            assert final[enrollment_id] == "not_answered"
    assert len(driver.voice.ledger()) == 6  # the provider placed none of the invalid calls


# --------------------------------------------------------------------------- 14. reaper


def test_reaper_redispatches_queued_attempts_whose_task_was_lost(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(3))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)
    assert len(claim(clean_db, campaign_id, driver.clock())) == 3  # enqueue "lost"
    limits = replace(REAP_NOTHING, queued=timedelta(minutes=5))
    driver.clock.advance(timedelta(minutes=4))
    assert driver.reap(limits)["requeued"] == 0  # not late yet
    assert driver.voice.ledger() == []
    driver.clock.advance(timedelta(minutes=2))
    assert driver.reap(limits)["requeued"] == 3
    assert {a.status for a in attempts_of(clean_db, campaign_id)} == {"in_progress"}
    assert sorted(driver.voice.ledger_count_by_key().values()) == [1, 1, 1]
    assert driver.reap(limits)["requeued"] == 0


def test_a_requeued_attempt_is_sent_again_only_after_another_timeout(
    clean_db: str, redis_url: str
) -> None:
    """While workers are down every re-send is lost too: once per timeout, not per reap."""
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(3))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)
    assert len(claim(clean_db, campaign_id, driver.clock())) == 3  # enqueue "lost"
    limits = replace(REAP_NOTHING, queued=timedelta(minutes=5))
    driver._dispatch = lambda ids: None  # type: ignore[method-assign]  # no worker takes them
    driver.clock.advance(timedelta(minutes=6))
    assert driver.reap(limits)["requeued"] == 3
    driver.clock.advance(timedelta(minutes=1))
    assert driver.reap(limits)["requeued"] == 0  # sent a minute ago: not late again yet
    driver.clock.advance(timedelta(minutes=5))
    assert driver.reap(limits)["requeued"] == 3


def test_reaper_reconciles_calls_whose_events_were_dropped(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(4))
    driver = make_driver(clean_db, redis_url, {**NOBODY_ANSWERS, "answer_rate": 0.5}, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()
    driver.clock.advance(timedelta(minutes=30))
    assert driver.voice.pop_due_events(driver.clock(), 1000)  # lost webhooks
    assert {a.status for a in attempts_of(clean_db, campaign_id)} == {"in_progress"}

    limits = replace(REAP_NOTHING, max_call=timedelta(minutes=20))
    assert driver.reap(limits)["reconciled"] == 4
    for attempt in attempts_of(clean_db, campaign_id):
        if attempt.attempt_no != 1:
            assert attempt.status == "pending"  # the retry plan went on
            continue
        assert attempt.conv_id is not None
        record = driver.voice.get_call(attempt.conv_id)
        status, outcome = map_provider_status(
            ProviderCallStatus(record.status), voicemail=record.voicemail
        )
        assert (attempt.status, attempt.outcome) == (status.value, outcome)
        assert attempt.ended_at == record.ended_at


def test_reaper_reapplies_a_stored_event_that_was_not_applied(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP}, rome_csv(2))
    driver = make_driver(clean_db, redis_url, EVERYONE_ANSWERS, MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver.tick()
    driver.clock.advance(timedelta(minutes=30))
    payloads = driver.voice.pop_due_events(driver.clock(), 1000)
    with transaction(clean_db) as session:  # stored, then the worker died before applying
        for payload in payloads:
            take_in(session, "simulated", driver.voice.parse_event, payload)
    assert {a.status for a in attempts_of(clean_db, campaign_id)} == {"in_progress"}

    limits = replace(REAP_NOTHING, inbox_retry_seconds=0.0)
    assert driver.reap(limits)["reapplied"] == len(payloads)
    attempts = attempts_of(clean_db, campaign_id)
    assert {(a.status, a.outcome) for a in attempts} == {("completed", "answered")}
    assert set(states(clean_db, campaign_id).values()) == {"goal_met"}
    assert driver.reap(limits)["reapplied"] == 0
