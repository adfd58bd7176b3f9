"""The demo's world before its campaign starts: a week with a public holiday, and some
people the account already called.

A campaign meets its rule packs' holidays and frequency caps only on some days and for
some people. So that every run of `make demo` shows them at work, whatever the date:

* the simulated week starts on the first Monday (06:00 UTC) whose Monday-to-Friday
  holds a public holiday of a shipped pack that closes on holidays for the demo's
  European contacts (France, Spain): their attempts are held that day (`held_holiday`);
* the account's other campaign ("Payment reminders") calls the demo's Miami customers
  every 8 hours from the day before the start until the Wednesday: Florida allows 3
  calls in 24 h, so the demo's calls to them wait until that campaign stops
  (`held_frequency_cap`). Its calls are recorded rows, not placed by the demo.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dialer.customers_csv import parse_customers
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.rule_packs import public_holidays
from dialer.policies.window import LegalBound
from dialer.schemas import CampaignSpec
from dialer.services.campaigns import create_campaign
from dialer.services.imports import import_customers
from models import Account, CallAttempt, Campaign, Enrollment
from models.vocabulary import AttemptStatus, Outcome

EARLIER_CAMPAIGN = "Payment reminders"
# Numbers of the example customers that the other campaign calls: Miami's area code.
EARLIER_PREFIX = "+1 305"
# Its calls, in hours from the demo's start (Monday 06:00 UTC): every 8 hours from
# Sunday 14:00 UTC to Wednesday 14:00 UTC, always 3 within any 24 hours.
EARLIER_CALLS_HOURS = tuple(range(-16, 57, 8))
HOLIDAY_COUNTRIES = ("ES", "FR")
WEEKS_SEARCHED = 52


def demo_start(now: datetime) -> datetime:
    """06:00 UTC on the first Monday after ``now`` whose working week holds a holiday."""
    days = (7 - now.weekday()) % 7 or 7
    first = (now + timedelta(days=days)).date()
    for week in range(WEEKS_SEARCHED):
        monday = first + timedelta(weeks=week)
        if _holiday_in_week(monday):
            return _six_utc(monday)
    return _six_utc(first)  # no such week within a year: the next Monday


def _holiday_in_week(monday: date) -> bool:
    closing = [p for p in PACKS if p.country in HOLIDAY_COUNTRIES and p.closed_on_holidays]
    weekdays = {monday + timedelta(days=n) for n in range(5)}
    years = tuple(sorted({d.year for d in weekdays}))
    return any(weekdays & public_holidays(p.country, p.subdivision, years) for p in closing)


def _six_utc(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=6)


def seed_earlier_calls(
    session: Session,
    account: Account,
    spec: CampaignSpec,
    customers_csv: Path,
    start: datetime,
    legal: LegalBound,
) -> int:
    """The other campaign and its calls to each Miami customer; returns how many
    customers it calls. Replaced on every run, like the demo's own campaign."""
    session.execute(
        delete(Campaign).where(Campaign.account_id == account.id, Campaign.name == EARLIER_CAMPAIGN)
    )
    lines = customers_csv.read_text(encoding="utf-8").splitlines()
    chosen = [line for line in lines[1:] if f",{EARLIER_PREFIX}" in line]
    if not chosen:
        return 0
    earlier = spec.model_copy(update={"name": EARLIER_CAMPAIGN})
    campaign = create_campaign(session, account, earlier, legal)
    rows = parse_customers(io.StringIO("\n".join([lines[0], *chosen]) + "\n"))
    import_customers(session, campaign, rows, partial=True)
    enrollments = session.execute(
        select(Enrollment.id, Enrollment.customer_id).where(Enrollment.campaign_id == campaign.id)
    ).all()
    for enrollment_id, customer_id in enrollments:
        for attempt_no, hours in enumerate(EARLIER_CALLS_HOURS, start=1):
            at = start + timedelta(hours=hours)
            session.add(
                CallAttempt(
                    enrollment_id=enrollment_id,
                    campaign_id=campaign.id,
                    customer_id=customer_id,
                    attempt_no=attempt_no,
                    status=AttemptStatus.COMPLETED,
                    outcome=Outcome.NO_ANSWER,
                    idempotency_key=f"{enrollment_id}:{attempt_no}",
                    scheduled_at=at,
                    dispatched_at=at,
                    finished_at=at + timedelta(minutes=1),
                )
            )
    session.flush()
    return len(enrollments)
