"""Campaign creation, customer import and the contact plan against real PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dialer.customers_csv import parse_customers
from dialer.errors import Conflict, TemplateError, ValidationFailed, WindowNeverOpens
from dialer.policies.plan import PlanBucket
from dialer.policies.window import LegalBound
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign
from dialer.services.imports import ImportRejected, import_customers
from dialer.services.plan import build_contact_plan
from models import Campaign, Customer, Enrollment, PhoneNumber

LEGAL = LegalBound()
SPEC: dict[str, Any] = {
    "name": "Renewals",
    "agent": {"name": "Agent", "provider_agent_id": "agt_1", "phone_numbers": ["+12125550100"]},
    "timezone": "Europe/Rome",
    "call_opening_message": "Hi {{name}}, about your {{plan}} plan",
    "customer_fields": ["plan"],
}
# Monday 2026-11-23 15:00 UTC: 10:00 in New York, 16:00 in Rome, 00:00 in Tokyo (Tuesday).
MONDAY_15_UTC = datetime(2026, 11, 23, 15, tzinfo=UTC)


def make(session: Session, **changes: Any) -> Campaign:
    account = get_or_create_account(session, "acme")
    return create_campaign(session, account, CampaignSpec.model_validate(SPEC | changes), LEGAL)


def load(session: Session, campaign: Campaign, csv_text: str, *, partial: bool = False):  # type: ignore[no-untyped-def]
    return import_customers(
        session, campaign, parse_customers(io.StringIO(csv_text)), partial=partial
    )


def test_create_campaign_resolves_agent_numbers_and_rotation_order(session: Session) -> None:
    campaign = make(session)
    numbers = session.scalars(
        select(PhoneNumber.e164).where(PhoneNumber.id.in_(campaign.phone_number_ids))
    )
    assert list(numbers) == ["+12125550100"]
    assert campaign.status == "draft"
    assert campaign.window_weekdays == [0, 1, 2, 3, 4]


def test_window_that_never_opens_is_refused_naming_the_field(session: Session) -> None:
    with pytest.raises(WindowNeverOpens) as info:
        make(session, call_working_hours={"start": "21:30", "end": "23:00"})
    assert info.value.field == "call_working_hours"


def test_unknown_template_field_is_refused_at_creation(session: Session) -> None:
    with pytest.raises(TemplateError) as info:
        make(session, call_opening_message="Hi {{nmae}}")
    assert info.value.field == "call_opening_message"
    assert "nmae" in str(info.value)


def test_caller_id_must_belong_to_the_agent(session: Session) -> None:
    other = make(
        session,
        name="Other",
        agent={"name": "B", "provider_agent_id": "b", "phone_numbers": ["+12125550109"]},
    )
    with pytest.raises(ValidationFailed) as info:
        make(session, phone_number_ids=[str(other.phone_number_ids[0])])
    assert info.value.field == "phone_number_ids.0"


def test_duplicate_campaign_name_is_a_conflict(session: Session) -> None:
    make(session)
    with pytest.raises(Conflict, match="already exists"):
        make(session)


GOOD_AND_BAD = (
    "customer_id,name,phone,timezone,plan\n"
    "c1,Ann,+12125550123,,gold\n"
    "c2,Bob,,,basic\n"
    "c3,Cy,+1 212 555,,basic\n"
    "c4,Dee,+81312345678,,gold\n"
    "c1,Ann twice,+12125550124,,gold\n"
    "c5,Eve,+12125550125,Not/AZone,gold\n"
)


def test_import_is_all_or_nothing_by_default(session: Session) -> None:
    campaign = make(session)
    with pytest.raises(ImportRejected) as info:
        load(session, campaign, GOOD_AND_BAD)
    assert [(p.line, p.field) for p in info.value.report.rejected] == [
        (6, "duplicate"),
        (7, "timezone"),
    ]
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Enrollment)) == 0


def test_partial_import_enrols_good_rows_and_classifies_the_rest(session: Session) -> None:
    campaign = make(session)
    report = load(session, campaign, GOOD_AND_BAD, partial=True)
    assert (report.enrolled, report.missing_contact, report.invalid_phone) == (4, 1, 1)
    states = dict(
        session.execute(
            select(Customer.customer_id, Enrollment.state).join(
                Enrollment, Enrollment.customer_id == Customer.id
            )
        ).all()
    )
    assert states == {"c1": "active", "c2": "missing_contact", "c3": "failed", "c4": "active"}


def test_reimport_updates_customers_and_reports_already_enrolled(session: Session) -> None:
    campaign = make(session)
    load(session, campaign, "customer_id,name,phone\nc1,Ann,+12125550123\n")
    report = load(session, campaign, "customer_id,name,phone\nc1,Anna,+12125550123\n")
    assert (report.customers_updated, report.already_enrolled, report.enrolled) == (1, 1, 0)
    assert session.scalar(select(Customer.name).where(Customer.customer_id == "c1")) == "Anna"


def test_plan_buckets_each_contact_in_its_local_time(session: Session) -> None:
    campaign = make(session)
    load(session, campaign, GOOD_AND_BAD, partial=True)
    plan = build_contact_plan(session, campaign, MONDAY_15_UTC, LEGAL)
    by_ref = {row.customer_ref: row for row in plan.rows}
    assert by_ref["c1"].bucket is PlanBucket.NOW  # 10:00 in New York
    assert by_ref["c1"].zones == ("America/New_York",)
    # 00:00 Tuesday in Tokyo: it opens at 09:00 the same local day.
    assert by_ref["c4"].bucket is PlanBucket.LATER_TODAY
    assert by_ref["c4"].next_opening == datetime(2026, 11, 24, 0, tzinfo=UTC)
    assert by_ref["c2"].bucket is PlanBucket.MISSING_CONTACT
    assert by_ref["c3"].bucket is PlanBucket.INVALID_NUMBER
    assert plan.counts[PlanBucket.NOW] == 1
    assert sum(plan.counts.values()) == 4
