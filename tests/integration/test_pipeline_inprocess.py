"""The pipeline's services end to end, in one process on a manual clock (real PG + Redis)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import NoReturn

import pytest
import redis
from sqlalchemy import func, select

from models import CallAttempt, Enrollment, Message
from models.session import transaction
from scheduler.driver import InProcessPipeline
from tests.integration.pipeline_support import (
    MONDAY_6_UTC,
    calls_outside_window,
    campaign_status,
    make_driver,
    setup_campaign,
    start,
)

TEN_MINUTES = timedelta(minutes=10)


def test_campaign_runs_to_done_inside_windows(clean_db: str, redis_url: str) -> None:
    _assert_runs_to_done_inside_windows(clean_db, make_driver(clean_db, redis_url))


def test_campaign_runs_to_done_on_the_in_memory_simulator(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same run with the simulator's state in memory: no Redis command is sent."""

    def no_redis(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError("the in-memory pipeline talked to Redis")

    monkeypatch.setattr(redis.Redis, "execute_command", no_redis)
    driver = make_driver(clean_db, redis_url=None)
    _assert_runs_to_done_inside_windows(clean_db, driver)
    assert driver.voice.pending_event_count() == 0


def _assert_runs_to_done_inside_windows(clean_db: str, driver: InProcessPipeline) -> None:
    campaign_id = setup_campaign(clean_db)
    start(clean_db, campaign_id, MONDAY_6_UTC)
    driver.run_until(lambda: campaign_status(clean_db, campaign_id) == "done", TEN_MINUTES)

    with transaction(clean_db) as session:
        states = Counter(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )
        open_attempts = session.scalar(
            select(func.count()).where(
                CallAttempt.campaign_id == campaign_id,
                CallAttempt.status.in_(("pending", "queued", "dispatching", "in_progress")),
            )
        )
        per_enrollment = session.execute(
            select(CallAttempt.enrollment_id, func.count())
            .where(CallAttempt.campaign_id == campaign_id, CallAttempt.dispatched_at.is_not(None))
            .group_by(CallAttempt.enrollment_id)
        ).all()
    assert states["active"] == 0
    assert sum(states.values()) == 30
    assert open_attempts == 0
    assert max(n for _, n in per_enrollment) <= 3  # len(delays) + 1
    assert calls_outside_window(clean_db, campaign_id) == []
    ledger = driver.voice.ledger_count_by_key()
    assert ledger
    assert set(ledger.values()) == {1}


def test_whatsapp_fallback_is_queued_once_after_n_unanswered(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db)
    driver = make_driver(
        clean_db,
        redis_url,
        {
            "answer_rate": 0.0,
            "voicemail_rate": 0.0,
            "failure_rate": 0.0,
            "busy_rate": 0.5,
            "no_answer_rate": 0.5,
            "whatsapp_reply_rate": 0.0,
        },
    )
    start(clean_db, campaign_id, MONDAY_6_UTC)
    driver.run_until(lambda: campaign_status(clean_db, campaign_id) == "done", TEN_MINUTES)
    with transaction(clean_db) as session:
        fallbacks = Counter(
            session.scalars(
                select(Message.enrollment_id).where(
                    Message.campaign_id == campaign_id, Message.purpose == "fallback"
                )
            )
        )
        states = Counter(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )
    assert len(fallbacks) == 30
    assert set(fallbacks.values()) == {1}
    assert states == Counter({"not_answered": 30})
