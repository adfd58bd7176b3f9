"""Constraints make bad states impossible, not just unlikely."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models import Account, Agent, CallAttempt, Campaign, Customer, Enrollment

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


def _enrollment(session: Session) -> Enrollment:
    account = Account(name=f"acme-{uuid.uuid4()}")
    session.add(account)
    session.flush()
    agent = Agent(account_id=account.id, name="a", provider_agent_id="p")
    customer = Customer(account_id=account.id, customer_id="c1", phone="+12125550123")
    session.add_all([agent, customer])
    session.flush()
    campaign = Campaign(account_id=account.id, name="c", agent_id=agent.id)
    session.add(campaign)
    session.flush()
    enrollment = Enrollment(campaign_id=campaign.id, customer_id=customer.id)
    session.add(enrollment)
    session.flush()
    return enrollment


def _attempt(e: Enrollment, no: int, status: str = "pending", **kw: object) -> CallAttempt:
    campaign = e.campaign_id
    return CallAttempt(
        enrollment_id=e.id,
        campaign_id=campaign,
        customer_id=e.customer_id,
        attempt_no=no,
        status=status,
        idempotency_key=f"{e.id}:{no}",
        scheduled_at=NOW,
        **kw,
    )


def _violates(session: Session, *objs: object) -> str:
    session.add_all(objs)
    with pytest.raises(IntegrityError) as info:
        session.flush()
    session.rollback()
    return str(info.value.orig)


def test_two_open_attempts_for_one_enrollment_are_refused(session: Session) -> None:
    e = _enrollment(session)
    session.add(_attempt(e, 1))
    session.flush()
    assert "uq_call_attempts_one_open_per_enrollment" in _violates(session, _attempt(e, 2))


def test_attempt_numbers_are_unique_per_enrollment(session: Session) -> None:
    e = _enrollment(session)
    session.add(_attempt(e, 1, "completed", outcome="no_answer", finished_at=NOW))
    session.flush()
    msg = _violates(session, _attempt(e, 1, "completed", outcome="busy", finished_at=NOW))
    assert "uq_call_attempts_enrollment_id" in msg


@pytest.mark.parametrize(
    ("status", "extra", "constraint"),
    [
        ("ringing", {"finished_at": NOW}, "ck_call_attempts_status"),
        ("completed", {"outcome": "maybe", "finished_at": NOW}, "ck_call_attempts_outcome"),
        ("completed", {"outcome": "answered"}, "ck_call_attempts_finished_iff_terminal"),
        ("pending", {"finished_at": NOW}, "ck_call_attempts_finished_iff_terminal"),
    ],
)
def test_status_checks(
    session: Session, status: str, extra: dict[str, object], constraint: str
) -> None:
    e = _enrollment(session)
    assert constraint in _violates(session, _attempt(e, 1, status, **extra))


def test_one_enrollment_per_campaign_and_customer(session: Session) -> None:
    e = _enrollment(session)
    dup = Enrollment(campaign_id=e.campaign_id, customer_id=e.customer_id)
    assert "uq_enrollments_campaign_id" in _violates(session, dup)


def test_customer_external_id_unique_per_account(session: Session) -> None:
    e = _enrollment(session)
    account_id = session.get(Customer, e.customer_id).account_id  # type: ignore[union-attr]
    assert "uq_customers_account_id" in _violates(
        session, Customer(account_id=account_id, customer_id="c1")
    )


def test_campaign_status_and_concurrency_are_checked(session: Session) -> None:
    e = _enrollment(session)
    campaign = session.get(Campaign, e.campaign_id)
    assert campaign is not None
    campaign.concurrency = 1001
    with pytest.raises(IntegrityError, match="ck_campaigns_concurrency"):
        session.flush()
