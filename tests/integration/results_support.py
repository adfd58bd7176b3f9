"""A campaign whose customers ended in several ways, written as rows (no pipeline run).

``record_results`` gives the enrolled customers c1..c6 the states and call attempts of
RESULTS; EXPECTED_COUNTERS are seed 003's counters that follow from them.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from dialer.customers_csv import parse_customers
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign
from dialer.services.imports import import_customers
from models import CallAttempt, Customer, Enrollment
from models.session import transaction
from tests.integration.pipeline_support import BASE_SPEC, LEGAL, rome_phone

FIRST_CALL_AT = datetime(2026, 11, 23, 9, tzinfo=UTC)

# customer_id -> (enrollment state, [(outcome, duration seconds, cost milli-cents), ...])
RESULTS: dict[str, tuple[str, list[tuple[str, int | None, int | None]]]] = {
    "c1": ("goal_met", [("answered", 60, 150_000)]),
    "c2": (
        "not_answered",
        [("no_answer", None, None), ("no_answer", None, None), ("busy", None, 0)],
    ),
    "c3": ("failed", [("failed", None, None)]),
    "c4": ("unresolved", [("voicemail", 20, 50_000), ("answered", 120, 300_000)]),
    "c5": ("active", [("voicemail", 15, 40_000)]),
    "c6": ("active", []),
}
RESULT_CUSTOMERS: list[dict[str, Any]] = [
    {"customer_id": ref, "name": f"Name {ref}", "phone": rome_phone(n)}
    for n, ref in enumerate(RESULTS)
]
EXPECTED_COUNTERS = {
    "total_contacts": 6,
    "completed_contacts": 4,  # every state but active
    "successful_contacts": 1,  # goal_met
    "failed_contacts": 1,
    "voicemail_contacts": 2,  # c4 and c5 reached voicemail at least once
    "no_answer_contacts": 1,  # not_answered
    "total_cost_millicents": 540_000,
    "total_cost_usd": 5.4,
    "average_duration_seconds": 90,  # of the answered calls: (60 + 120) / 2
}


def campaign_with_results(url: str, account_name: str, name: str = "Results") -> uuid.UUID:
    """A campaign of ``account_name`` with RESULT_CUSTOMERS enrolled and RESULTS recorded."""
    rows = "".join(f"{c['customer_id']},{c['name']},{c['phone']}\n" for c in RESULT_CUSTOMERS)
    with transaction(url) as session:
        account = get_or_create_account(session, account_name)
        spec = CampaignSpec.model_validate({**BASE_SPEC, "name": name})
        campaign = create_campaign(session, account, spec, LEGAL)
        lines = io.StringIO("customer_id,name,phone\n" + rows)
        import_customers(session, campaign, parse_customers(lines), partial=False)
        campaign_id = campaign.id
    record_results(url, campaign_id)
    return campaign_id


def record_results(url: str, campaign_id: uuid.UUID) -> None:
    """Write RESULTS onto the campaign's enrollments of customers c1..c6."""
    with transaction(url) as session:
        enrollments = session.execute(
            select(Enrollment, Customer.customer_id)
            .join(Customer, Customer.id == Enrollment.customer_id)
            .where(Enrollment.campaign_id == campaign_id)
        ).all()
        for enrollment, ref in enrollments:
            state, calls = RESULTS[ref]
            enrollment.state = state
            enrollment.calls_made = len(calls)
            enrollment.unanswered_calls = sum(outcome != "answered" for outcome, _, _ in calls)
            session.add_all(_attempts(enrollment, calls))


def _attempts(
    enrollment: Enrollment, calls: list[tuple[str, int | None, int | None]]
) -> list[CallAttempt]:
    attempts = []
    for number, (outcome, duration, cost) in enumerate(calls, start=1):
        at = FIRST_CALL_AT + timedelta(hours=number)
        attempts.append(
            CallAttempt(
                enrollment_id=enrollment.id,
                campaign_id=enrollment.campaign_id,
                customer_id=enrollment.customer_id,
                attempt_no=number,
                idempotency_key=f"att:{enrollment.id}:{number}",
                status="failed" if outcome == "failed" else "completed",
                outcome=outcome,
                scheduled_at=at,
                queued_at=at,
                dispatched_at=at,
                finished_at=at + timedelta(minutes=5),
                duration_seconds=duration,
                cost_millicents=cost,
            )
        )
    return attempts
