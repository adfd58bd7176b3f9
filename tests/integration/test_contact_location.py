"""Contacts placed by their own location fields, and a legal bound tightened afterwards (issue 16).

Against real PostgreSQL: the scan reads ``fields->>'state'`` and ``->>'country'`` in SQL,
the plan and dispatch read the loaded row; all three must agree.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import select

from dialer.policies.plan import PlanBucket
from dialer.policies.vocabulary import AttemptStatus, EnrollmentState
from dialer.policies.window import LegalBound
from dialer.services.plan import build_contact_plan
from models import CallAttempt, Campaign, Customer, Enrollment
from models.session import transaction
from scheduler.scan import scan_campaign
from tests.integration.pipeline_support import (
    LEGAL,
    attempts_of,
    make_driver,
    relay,
    setup_campaign,
    start,
)

# Wednesday 2026-07-15 14:00 UTC: 10:00 in Miami, 09:00 in Pensacola, 19:00 in Almaty,
# 04:00 in Honolulu, 00:00 next day in Guam.
WEDNESDAY_14_UTC = datetime(2026, 7, 15, 14, tzinfo=UTC)
OFFICE_HOURS = {
    "timezone": "America/New_York",
    "call_working_hours": {"start": "09:00", "end": "17:00"},
    "concurrency": 100,
    "whatsapp_channel": None,
    "whatsapp_first_message": None,
}
CUSTOMERS = (
    "customer_id,name,phone,plan,state,country,zip\n"
    "tollfree-bare,Ann,+18005550101,gold,,,\n"
    "tollfree-florida,Bob,+18005550102,gold,FL,US,\n"
    "tollfree-florida-name,Cy,+18005550103,gold,Florida,,\n"
    "kazakh-mobile,Dee,+77012345678,gold,,,\n"
    "tollfree-miami-zip,Eve,+18005550104,gold,,,33101\n"
    "tollfree-honolulu-zip,Fay,+18005550105,gold,,US,96801\n"
)


def _started(url: str, redis_url: str, spec: dict[str, Any], csv_text: str) -> uuid.UUID:
    campaign_id = setup_campaign(url, spec, csv_text)
    driver = make_driver(url, redis_url, now=WEDNESDAY_14_UTC)
    start(url, campaign_id, WEDNESDAY_14_UTC)
    relay(driver)
    return campaign_id


def test_the_scan_and_the_plan_place_contacts_by_their_location_fields(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = _started(clean_db, redis_url, OFFICE_HOURS, CUSTOMERS)
    with transaction(clean_db) as session:
        campaign = session.get_one(Campaign, campaign_id)
        plan = build_contact_plan(session, campaign, WEDNESDAY_14_UTC, LEGAL)
    by_ref = {row.customer_ref: row for row in plan.rows}
    assert by_ref["tollfree-bare"].bucket is PlanBucket.NEEDS_LOCATION
    assert by_ref["tollfree-florida"].bucket is PlanBucket.NOW
    assert by_ref["tollfree-florida"].zone_source == "location"
    assert set(by_ref["tollfree-florida"].zones) == {"America/New_York", "America/Chicago"}
    assert by_ref["tollfree-florida-name"].bucket is PlanBucket.NOW
    # A ZIP code places a number that carries no location: Miami now, Honolulu at 04:00
    # waits for its own 09:00 (without the ZIP code both would need a location).
    assert by_ref["tollfree-miami-zip"].bucket is PlanBucket.NOW
    assert by_ref["tollfree-miami-zip"].zone_source == "location"
    assert by_ref["tollfree-honolulu-zip"].bucket is PlanBucket.LATER_TODAY
    assert by_ref["tollfree-honolulu-zip"].zones == ("Pacific/Honolulu",)
    # 19:00 in Kazakhstan (UTC+5 everywhere): past office hours, opens tomorrow 09:00.
    assert by_ref["kazakh-mobile"].bucket is PlanBucket.THIS_WEEK

    with transaction(clean_db) as session:
        result = scan_campaign(session, campaign_id, WEDNESDAY_14_UTC, LEGAL, 500)
    attempts = {a.id: a for a in attempts_of(clean_db, campaign_id)}
    claimed_refs = _refs(clean_db, result.claimed)
    assert claimed_refs == {"tollfree-florida", "tollfree-florida-name", "tollfree-miami-zip"}
    assert result.unreachable == 1  # the bare toll-free number: refused, as before
    assert result.moved == 2  # the Kazakh mobile and Honolulu wait for their opening
    statuses = sorted(a.status for a in attempts.values())
    assert statuses.count(AttemptStatus.CANCELED) == 1


def test_a_tightened_legal_bound_cancels_nobody(clean_db: str, redis_url: str) -> None:
    evening = {**OFFICE_HOURS, "call_working_hours": {"start": "19:00", "end": "21:00"}}
    new_york = "customer_id,name,phone,plan\nc1,Ann,+12125550123,gold\nc2,Bob,+12125550124,gold\n"
    campaign_id = _started(clean_db, redis_url, evening, new_york)
    tightened = LegalBound(time(8), time(19))  # the deployment now ends calls at 19:00
    at = datetime(2026, 7, 15, 23, 30, tzinfo=UTC)  # 19:30 in New York
    with transaction(clean_db) as session:
        result = scan_campaign(session, campaign_id, at, tightened, 500)
        campaign = session.get_one(Campaign, campaign_id)
        plan = build_contact_plan(session, campaign, at, tightened)
    assert result.outside_legal_bound
    assert (result.claimed, result.unreachable) == ([], 0)
    assert {a.status for a in attempts_of(clean_db, campaign_id)} == {AttemptStatus.PENDING}
    assert plan.counts[PlanBucket.OUTSIDE_LEGAL_BOUND] == 2
    with transaction(clean_db) as session:
        states = set(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )
    assert states == {EnrollmentState.ACTIVE}


def _refs(url: str, attempt_ids: list[uuid.UUID]) -> set[str | None]:
    with transaction(url) as session:
        return set(
            session.scalars(
                select(Customer.customer_id)
                .join(CallAttempt, CallAttempt.customer_id == Customer.id)
                .where(CallAttempt.id.in_(attempt_ids))
            )
        )
