"""Rule packs in the scan and at dispatch, against real PostgreSQL (issue 16).

Florida: 8 a.m. to 8 p.m. and at most 3 calls to a person in 24 hours, across the
account's campaigns. The scan moves what the packs refuse; dispatch refuses again under
the attempt's lock, when calls were placed since the claim.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from dialer.customers_csv import parse_customers
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign
from dialer.services.dispatch import Verdict, dispatch_batch
from dialer.services.imports import import_customers
from dialer.services.reports import calls_over_frequency_cap, campaign_report
from models import CallAttempt, Campaign
from models.session import transaction
from scheduler.scan import scan_campaign
from tests.integration.pipeline_support import (
    BASE_SPEC,
    LEGAL,
    attempts_of,
    make_driver,
    relay,
    start,
)

MIAMI = "+13055550123"
MANHATTAN = "+12125550123"
EVERY_DAY = {
    "timezone": "America/New_York",
    "call_working_hours": {"start": "08:00", "end": "21:00", "weekdays": [0, 1, 2, 3, 4, 5, 6]},
    "concurrency": 50,
    "whatsapp_channel": None,
    "whatsapp_first_message": None,
}
# Wednesday 2026-07-15 20:30 in New York and Miami (EDT, UTC-4).
EVENING = datetime(2026, 7, 16, 0, 30, tzinfo=UTC)
MORNING = datetime(2026, 7, 15, 14, tzinfo=UTC)  # 10:00 local


def _campaigns(url: str, names: list[str], phones: list[str]) -> list[uuid.UUID]:
    """Campaigns of one account, each enrolling the same customers."""
    csv_text = "customer_id,name,phone,plan\n" + "".join(
        f"p{i},Name{i},{phone},gold\n" for i, phone in enumerate(phones)
    )
    ids = []
    with transaction(url) as session:
        account = get_or_create_account(session, f"acct-{uuid.uuid4().hex[:8]}")
        for name in names:
            spec: dict[str, Any] = {**BASE_SPEC, **EVERY_DAY, "name": name}
            campaign = create_campaign(session, account, CampaignSpec.model_validate(spec), LEGAL)
            import_customers(
                session, campaign, parse_customers(io.StringIO(csv_text)), partial=True
            )
            ids.append(campaign.id)
    return ids


def _started(url: str, redis_url: str, ids: list[uuid.UUID], now: datetime) -> Any:
    driver = make_driver(url, redis_url, now=now)
    for campaign_id in ids:
        start(url, campaign_id, now)
    relay(driver)
    return driver


def _mark_called(url: str, campaign_id: uuid.UUID, at: datetime) -> None:
    with transaction(url) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.campaign_id == campaign_id)
            .values(status="completed", outcome="answered", dispatched_at=at, finished_at=at)
        )


def test_florida_hours_end_at_eight(clean_db: str, redis_url: str) -> None:
    (campaign_id,) = _campaigns(clean_db, ["Evening"], [MIAMI, MANHATTAN])
    _started(clean_db, redis_url, [campaign_id], EVENING)
    with transaction(clean_db) as session:
        result = scan_campaign(session, campaign_id, EVENING, LEGAL, 500)
    assert len(result.claimed) == 1
    assert result.moved == 1
    by_state = {a.id: a for a in attempts_of(clean_db, campaign_id)}
    moved = next(a for a in by_state.values() if a.id not in result.claimed)
    # Thursday 08:00 in Miami.
    assert moved.scheduled_at == datetime(2026, 7, 16, 12, tzinfo=UTC)
    assert result.holds == {"held_pack_hours": 1}
    assert _holds(clean_db, campaign_id) == {"held_pack_hours": 1}


def test_a_fourth_call_in_24_hours_waits_across_campaigns(clean_db: str, redis_url: str) -> None:
    ids = _campaigns(clean_db, ["A", "B", "C", "D"], [MIAMI])
    driver = _started(clean_db, redis_url, ids, MORNING)
    for hours_ago, other in zip((20, 5, 1), ids[1:], strict=True):
        _mark_called(clean_db, other, MORNING - timedelta(hours=hours_ago))
    with transaction(clean_db) as session:
        result = scan_campaign(session, ids[0], MORNING, LEGAL, 500)
    assert (result.claimed, result.moved) == ([], 1)
    (waiting,) = attempts_of(clean_db, ids[0])
    assert waiting.scheduled_at == MORNING + timedelta(hours=4)  # the 20-hour-old call ages out
    assert driver is not None
    assert _holds(clean_db, ids[0]) == {"held_frequency_cap": 1}
    with transaction(clean_db) as session:  # a second hold adds to the count
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.campaign_id == ids[0])
            .values(scheduled_at=MORNING)
        )
        session.execute(update(Campaign).where(Campaign.id == ids[0]).values(next_due_at=MORNING))
        scan_campaign(session, ids[0], MORNING, LEGAL, 500)
    assert _holds(clean_db, ids[0]) == {"held_frequency_cap": 2}


def _holds(url: str, campaign_id: uuid.UUID) -> dict[str, int]:
    with transaction(url) as session:
        return dict(session.get_one(Campaign, campaign_id).holds)


def test_dispatch_refuses_a_call_the_cap_filled_since_the_claim(
    clean_db: str, redis_url: str
) -> None:
    ids = _campaigns(clean_db, ["A", "B", "C", "D"], [MIAMI])
    driver = _started(clean_db, redis_url, ids, MORNING)
    with transaction(clean_db) as session:
        claimed = scan_campaign(session, ids[0], MORNING, LEGAL, 500).claimed
    assert len(claimed) == 1
    for hours_ago, other in zip((20, 5, 1), ids[1:], strict=True):
        _mark_called(clean_db, other, MORNING - timedelta(hours=hours_ago))
    reports = dispatch_batch(driver.uow, driver.voice, claimed, driver.clock, driver.limits)
    assert [(r.verdict, r.detail) for r in reports] == [(Verdict.DEFERRED, "frequency cap reached")]
    (waiting,) = attempts_of(clean_db, ids[0])
    assert waiting.status == "pending"
    assert waiting.scheduled_at == MORNING + timedelta(hours=4)


def test_a_dialed_call_keeps_the_evidence_of_why_it_was_allowed(
    clean_db: str, redis_url: str
) -> None:
    ids = _campaigns(clean_db, ["A", "B"], [MIAMI])
    driver = _started(clean_db, redis_url, ids, MORNING)
    _mark_called(clean_db, ids[1], MORNING - timedelta(hours=5))  # one call within 24 h
    with transaction(clean_db) as session:
        claimed = scan_campaign(session, ids[0], MORNING, LEGAL, 500).claimed
    (report,) = dispatch_batch(driver.uow, driver.voice, claimed, driver.clock, driver.limits)
    assert report.verdict == Verdict.PLACED
    (dialed,) = attempts_of(clean_db, ids[0])
    evidence = dialed.evidence
    assert evidence is not None
    assert evidence["checked_at"] == "2026-07-15T14:00:00Z"
    assert evidence["zones"] == ["America/New_York"]
    assert evidence["zone_source"] == "phone"
    assert evidence["local_times"] == {"America/New_York": "2026-07-15T10:00:00-04:00"}
    assert evidence["jurisdiction"] == {"country": "US", "subdivision": "FL", "source": "phone"}
    assert any(label.startswith("us-fl@") for label in evidence["rule_packs"])
    assert evidence["window"]["end"] == "20:00"  # Florida's hours, not the campaign's 21:00
    assert evidence["window_closes_at"] == "2026-07-16T00:00:00Z"
    assert "3/24h" in evidence["frequency_caps"]
    assert evidence["calls_in_cap_period"] == 1
    assert evidence["suppression_checked_at"] == "2026-07-15T14:00:00Z"


def test_the_audit_finds_a_call_placed_over_the_cap(clean_db: str, redis_url: str) -> None:
    ids = _campaigns(clean_db, ["A", "B", "C", "D"], [MIAMI])
    _started(clean_db, redis_url, ids, MORNING)
    for hours_ago, other in zip((20, 5), ids[1:3], strict=True):
        _mark_called(clean_db, other, MORNING - timedelta(hours=hours_ago))
    _mark_called(clean_db, ids[0], MORNING)
    with transaction(clean_db) as session:
        assert calls_over_frequency_cap(session, ids[0], LEGAL) == []  # the third in 24 h
    _mark_called(clean_db, ids[3], MORNING - timedelta(hours=1))
    with transaction(clean_db) as session:
        (over,) = calls_over_frequency_cap(session, ids[0], LEGAL)  # now the fourth
        assert (
            over
            == session.scalars(
                select(CallAttempt.id).where(CallAttempt.campaign_id == ids[0])
            ).one()
        )
        report = campaign_report(session, ids[0], LEGAL)
    assert report.calls_over_frequency_cap == 1
