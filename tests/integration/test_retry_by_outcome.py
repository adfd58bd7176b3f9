"""Retries by outcome through the results service (issue 16), on real PostgreSQL.

Each test starts a campaign, marks its first attempts in progress as dispatch would,
and applies provider call records with ``apply_call_record``: what the webhook and
reconciliation paths run.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from dialer.policies.vocabulary import (
    AttemptStatus,
    EnrollmentState,
    ProviderCallStatus,
    Segment,
    SuppressionSource,
)
from dialer.providers.base import CallRecord
from dialer.services.attempts import idempotency_key
from dialer.services.lifecycle import lock_campaign, resume_campaign
from dialer.services.results import apply_call_record
from dialer.services.suppressions import suppressed_pairs
from models import CallAttempt, Campaign, Customer, Enrollment, Suppression
from models.session import transaction
from tests.integration.pipeline_support import (
    MONDAY_8_UTC,
    attempts_of,
    enrollments_of,
    rome_csv,
    setup_campaign,
    start,
)

ENDED = MONDAY_8_UTC + timedelta(minutes=10)


def _campaign(url: str, retry_by_outcome: dict[str, Any], customers: int = 1) -> uuid.UUID:
    campaign_id = setup_campaign(
        url,
        {"call_attempt_delays": [60, 240, 1440], "retry_by_outcome": retry_by_outcome},
        rome_csv(customers),
    )
    start(url, campaign_id, MONDAY_8_UTC)
    return campaign_id


def _end_open_call(url: str, campaign_id: uuid.UUID, status: str, **record: Any) -> None:
    """The enrollment's next call is placed (as dispatch would) and ends with ``status``."""
    with transaction(url) as session:
        (enrollment,) = session.scalars(
            select(Enrollment).where(Enrollment.campaign_id == campaign_id)
        )
        pending = session.scalars(
            select(CallAttempt).where(
                CallAttempt.enrollment_id == enrollment.id,
                CallAttempt.status == AttemptStatus.PENDING,
            )
        ).first()
        if pending is None:  # the first call: the scan has not claimed one yet
            pending = CallAttempt(
                enrollment_id=enrollment.id,
                campaign_id=campaign_id,
                customer_id=enrollment.customer_id,
                attempt_no=1,
                idempotency_key=idempotency_key(enrollment.id, 1),
                scheduled_at=MONDAY_8_UTC,
            )
            session.add(pending)
        pending.status = AttemptStatus.IN_PROGRESS
        pending.conv_id = pending.idempotency_key
        session.flush()
        call = CallRecord(
            id=pending.idempotency_key, status=status, to="+390612345600", ended_at=ENDED, **record
        )
        apply_call_record(session, pending, call, ENDED)


def test_a_busy_call_waits_the_busy_delays_and_stops_at_max_tries(clean_db: str) -> None:
    campaign_id = _campaign(clean_db, {"busy": {"delays_minutes": [5, 15], "max_tries": 2}})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.BUSY)
    second = [a for a in attempts_of(clean_db, campaign_id) if a.attempt_no == 2]
    assert [a.scheduled_at for a in second] == [ENDED + timedelta(minutes=5)]
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.BUSY)
    (enrollment,) = enrollments_of(clean_db, campaign_id)
    assert enrollment.state == EnrollmentState.NOT_ANSWERED
    assert enrollment.outcome_calls == {"busy": 2}
    assert enrollment.close_reason == "busy 2 times (max_tries 2)"
    assert len(attempts_of(clean_db, campaign_id)) == 2  # three were allowed by the delays


def test_a_no_answer_keeps_the_campaign_delays(clean_db: str) -> None:
    campaign_id = _campaign(clean_db, {"busy": {"delays_minutes": [5]}})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.NO_ANSWER)
    second = [a for a in attempts_of(clean_db, campaign_id) if a.attempt_no == 2]
    assert [a.scheduled_at for a in second] == [ENDED + timedelta(minutes=60)]


def test_voicemail_with_retry_off_closes_the_enrollment(clean_db: str) -> None:
    campaign_id = _campaign(clean_db, {"retry_voicemail": False})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.COMPLETED, voicemail=True)
    (enrollment,) = enrollments_of(clean_db, campaign_id)
    assert enrollment.state == EnrollmentState.NOT_ANSWERED
    assert [a.outcome for a in attempts_of(clean_db, campaign_id)] == ["voicemail"]


def test_voicemail_is_retried_by_default(clean_db: str) -> None:
    campaign_id = _campaign(clean_db, {})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.COMPLETED, voicemail=True)
    (enrollment,) = enrollments_of(clean_db, campaign_id)
    assert enrollment.state == EnrollmentState.ACTIVE
    assert len(attempts_of(clean_db, campaign_id)) == 2


def test_resume_starts_the_outcome_counts_again(clean_db: str) -> None:
    campaign_id = _campaign(clean_db, {"busy": {"max_tries": 1}})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.BUSY)
    with transaction(clean_db) as session:
        campaign = lock_campaign(session, campaign_id)
        resume_campaign(session, campaign, Segment.NOT_ANSWERED, ENDED)
    with transaction(clean_db) as session:
        (counts,) = session.scalars(
            select(Enrollment.outcome_calls).where(Enrollment.campaign_id == campaign_id)
        )
    assert counts == {}


def _account_phone(url: str, campaign_id: uuid.UUID) -> tuple[uuid.UUID, str]:
    with transaction(url) as session:
        campaign = session.get_one(Campaign, campaign_id)
        (phone,) = session.scalars(
            select(Customer.phone)
            .join(Enrollment, Enrollment.customer_id == Customer.id)
            .where(Enrollment.campaign_id == campaign_id)
        )
        assert phone is not None
        return campaign.account_id, phone


def test_an_opt_out_in_the_extraction_suppresses_the_number_and_stops_the_calls(
    clean_db: str,
) -> None:
    campaign_id = _campaign(clean_db, {})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.NO_ANSWER)
    assert len(attempts_of(clean_db, campaign_id)) == 2  # a retry is planned
    _end_open_call(
        clean_db, campaign_id, ProviderCallStatus.COMPLETED, extraction={"opt_out": True}
    )
    (enrollment,) = enrollments_of(clean_db, campaign_id)
    assert (enrollment.state, enrollment.close_reason) == (
        EnrollmentState.OPTED_OUT,
        "opt-out in the call",
    )
    assert len(attempts_of(clean_db, campaign_id)) == 2  # no third call
    account_id, phone = _account_phone(clean_db, campaign_id)
    with transaction(clean_db) as session:
        listed = session.get_one(Suppression, (account_id, phone))
        assert listed.source == SuppressionSource.CALL_EXTRACTION
        assert session.get_one(Customer, enrollment.customer_id).opted_out
        # every campaign of the account finds the number listed
        assert suppressed_pairs(session, [(account_id, phone)]) == {(account_id, phone)}


def test_a_late_extraction_saying_wrong_number_cancels_the_planned_call(clean_db: str) -> None:
    campaign_id = _campaign(clean_db, {})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.COMPLETED, voicemail=True)
    first, planned = sorted(attempts_of(clean_db, campaign_id), key=lambda a: a.attempt_no)
    with transaction(clean_db) as session:
        attempt = session.get_one(CallAttempt, first.id, with_for_update=True)
        late = CallRecord(
            id=first.idempotency_key,
            status=ProviderCallStatus.COMPLETED,
            to="+390612345600",
            voicemail=True,
            extraction={"wrong_number": True},
        )
        assert apply_call_record(session, attempt, late, ENDED + timedelta(minutes=1))
    (enrollment,) = enrollments_of(clean_db, campaign_id)
    assert (enrollment.state, enrollment.close_reason) == (EnrollmentState.FAILED, "wrong number")
    statuses = {a.id: a.status for a in attempts_of(clean_db, campaign_id)}
    assert statuses[planned.id] == AttemptStatus.CANCELED
    with transaction(clean_db) as session:
        assert session.scalars(select(Suppression)).first() is None  # not an opt-out


def test_a_late_opt_out_after_an_answered_call_still_suppresses(clean_db: str) -> None:
    campaign_id = _campaign(clean_db, {})
    _end_open_call(clean_db, campaign_id, ProviderCallStatus.COMPLETED)
    (attempt_row,) = attempts_of(clean_db, campaign_id)
    with transaction(clean_db) as session:
        attempt = session.get_one(CallAttempt, attempt_row.id, with_for_update=True)
        late = CallRecord(
            id=attempt_row.idempotency_key,
            status=ProviderCallStatus.COMPLETED,
            to="+390612345600",
            extraction={"opt_out": "yes"},
        )
        apply_call_record(session, attempt, late, ENDED)
    (enrollment,) = enrollments_of(clean_db, campaign_id)
    assert enrollment.state == EnrollmentState.GOAL_MET  # contacted: never called again anyway
    account_id, phone = _account_phone(clean_db, campaign_id)
    with transaction(clean_db) as session:
        assert session.get(Suppression, (account_id, phone)) is not None
        assert session.get_one(Customer, enrollment.customer_id).opted_out
