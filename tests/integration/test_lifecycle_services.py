"""Scheduled campaigns and seed 000's start-scheduled, through the services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from dialer.errors import Conflict, NotFound
from dialer.services.lifecycle import start_scheduled
from models import CallAttempt
from models.session import transaction
from tests.integration.pipeline_support import MONDAY_6_UTC, make_driver, setup_campaign, start

LATER = MONDAY_6_UTC + timedelta(days=2)


def _attempts(url: str, campaign_id: object) -> list[CallAttempt]:
    with transaction(url) as session:
        return list(
            session.scalars(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id))
        )


def test_scheduled_campaign_first_attempts_are_due_at_scheduled_at(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(
        clean_db, {"schedule_type": "scheduled", "scheduled_at": LATER.isoformat()}
    )
    driver = make_driver(clean_db, redis_url)
    start(clean_db, campaign_id, MONDAY_6_UTC)
    driver.tick()  # relays campaign.started: materialises the first attempts
    attempts = _attempts(clean_db, campaign_id)
    assert len(attempts) == 30
    assert {a.scheduled_at for a in attempts} == {LATER}
    assert driver.voice.ledger() == []  # nothing called before scheduled_at


def test_start_scheduled_moves_a_pending_attempt_to_now_and_refuses_others(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(
        clean_db, {"schedule_type": "scheduled", "scheduled_at": LATER.isoformat()}
    )
    start(clean_db, campaign_id, MONDAY_6_UTC)
    make_driver(clean_db, redis_url).tick()
    first, second = _attempts(clean_db, campaign_id)[:2]
    with transaction(clean_db) as session:
        moved = start_scheduled(session, first.id, MONDAY_6_UTC)
        assert moved.scheduled_at == MONDAY_6_UTC
        session.get_one(CallAttempt, second.id).status = "queued"
        session.get_one(CallAttempt, second.id).queued_at = MONDAY_6_UTC
    with transaction(clean_db) as session, pytest.raises(Conflict, match="only a pending attempt"):
        start_scheduled(session, second.id, MONDAY_6_UTC)
    with transaction(clean_db) as session, pytest.raises(NotFound):
        start_scheduled(session, campaign_id, MONDAY_6_UTC)  # not an attempt id
