"""The account's do-not-contact list against real PostgreSQL (issue 16).

A listed number is never called or messaged in any campaign of its account: the scan
closes its contact at claim, dispatch refuses it under the attempt's lock when it was
listed after the claim, a queued message to it is canceled, and a STOP reply lists it.
"""

from __future__ import annotations

import io
import uuid
from datetime import date, timedelta

from sqlalchemy import select

from dialer.policies.plan import PlanBucket
from dialer.policies.vocabulary import AttemptStatus, EnrollmentState, SuppressionSource
from dialer.services.dispatch import Verdict, dispatch_batch
from dialer.services.messages import opt_out
from dialer.services.plan import build_contact_plan
from dialer.services.suppressions import (
    SUPPRESSED,
    SuppressionEntry,
    add_suppressions,
    list_suppressions,
    load_numbers,
    remove_suppression,
)
from models import Campaign, Customer, Suppression
from models.session import transaction
from scheduler.scan import scan_campaign
from tests.integration.pipeline_support import (
    CUSTOMERS_CSV,
    LEGAL,
    MONDAY_8_UTC,
    attempts_of,
    count_place_calls,
    enrollments_of,
    make_driver,
    messages_of,
    relay,
    run_to_done,
    setup_campaign,
    start,
)

NEW_YORK = [f"+1212555{100 + n:04d}" for n in range(10)]
ROME = [f"+39061234{5600 + n:04d}" for n in range(10)]


def _account_of(url: str, campaign_id: uuid.UUID) -> uuid.UUID:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).account_id


def _phones(url: str) -> dict[uuid.UUID, str | None]:
    with transaction(url) as session:
        return {row[0]: row[1] for row in session.execute(select(Customer.id, Customer.phone))}


def _list(url: str, account_id: uuid.UUID, *phones: str, source: str = "national_dnc") -> None:
    with transaction(url) as session:
        add_suppressions(session, account_id, [SuppressionEntry(p, source) for p in phones])


def test_loading_a_file_counts_every_line_and_keeps_the_first_source(clean_db: str) -> None:
    campaign_id = setup_campaign(clean_db)
    account_id = _account_of(clean_db, campaign_id)
    text = (
        "phone\n"  # a header: skipped
        "+12125550100\n"
        "2125550101,extra,cells\n"  # ten NANP digits with --default-region US
        "(212) 555-0102\n"
        "\n"
        "not a number\n" + "9" * 60 + "\n"
        "+12125550100\n"  # repeated in the file
    )
    rejected: list[tuple[int, str]] = []
    with transaction(clean_db) as session:
        report = load_numbers(
            session,
            account_id,
            io.StringIO(text),
            source="national_dnc",
            listed_on=date(2026, 11, 1),
            default_region="US",
            reject=lambda line, _raw, reason: rejected.append((line, reason)),
        )
    assert report.as_dict() == {"read": 6, "added": 3, "already_listed": 1, "rejected": 2}
    assert [line for line, _ in rejected] == [6, 7]
    with transaction(clean_db) as session:
        again = load_numbers(
            session,
            account_id,
            io.StringIO("+12125550100\n+12125550199\n"),
            source="state_fl",
            listed_on=None,
            default_region=None,
            reject=lambda *_: None,
        )
        rows = {r.phone: r.source for r in list_suppressions(session, account_id, limit=10)}
    assert (again.added, again.already_listed) == (1, 1)
    assert rows == {
        "+12125550100": "national_dnc",
        "+12125550101": "national_dnc",
        "+12125550102": "national_dnc",
        "+12125550199": "state_fl",
    }


def test_a_listed_number_is_never_called_nor_messaged(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db)
    account_id = _account_of(clean_db, campaign_id)
    listed = [NEW_YORK[0], ROME[0], ROME[1]]
    _list(clean_db, account_id, *listed)
    # Another account's list does not touch this campaign.
    other = setup_campaign(clean_db, {"name": "Other account"})
    _list(clean_db, _account_of(clean_db, other), ROME[2])

    driver = make_driver(clean_db, redis_url, now=MONDAY_8_UTC)
    requests = count_place_calls(driver.voice)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    with transaction(clean_db) as session:
        plan = build_contact_plan(
            session, session.get_one(Campaign, campaign_id), MONDAY_8_UTC, LEGAL
        )
    assert plan.counts[PlanBucket.SUPPRESSED] == 3
    run_to_done(driver, clean_db, campaign_id, timedelta(minutes=30))

    attempts = attempts_of(clean_db, campaign_id)
    phone_of = _phones(clean_db)
    called = {phone_of[a.customer_id] for a in attempts if a.idempotency_key in requests}
    assert called
    assert not called & set(listed)
    assert ROME[2] in called
    closed = {e.id: (e.state, e.close_reason) for e in enrollments_of(clean_db, campaign_id)}
    suppressed = [v for v in closed.values() if v == (EnrollmentState.OPTED_OUT, SUPPRESSED)]
    assert len(suppressed) == 3
    assert not {m.to_address for m in messages_of(clean_db, campaign_id)} & set(listed)
    canceled = [a for a in attempts if a.last_error == SUPPRESSED]
    assert len(canceled) == 3
    assert {a.status for a in canceled} == {AttemptStatus.CANCELED}


def test_a_number_listed_while_its_attempt_is_queued_is_not_dialed(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 50})
    account_id = _account_of(clean_db, campaign_id)
    driver = make_driver(clean_db, redis_url, now=MONDAY_8_UTC)
    requests = count_place_calls(driver.voice)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)
    with transaction(clean_db) as session:
        claimed = scan_campaign(session, campaign_id, MONDAY_8_UTC, LEGAL, 500).claimed
    assert len(claimed) == 20  # 09:00 in Rome and 17:00 in Tokyo: both windows open
    _list(clean_db, account_id, ROME[3])  # listed after the claim, before dispatch

    reports = dispatch_batch(driver.uow, driver.voice, claimed, driver.clock, driver.limits)

    refused = [r for r in reports if r.verdict is Verdict.CANCELED]
    assert [r.detail for r in refused] == [SUPPRESSED]
    by_id = {a.id: a for a in attempts_of(clean_db, campaign_id)}
    assert _phones(clean_db)[by_id[refused[0].attempt_id].customer_id] == ROME[3]
    assert by_id[refused[0].attempt_id].idempotency_key not in requests
    assert sum(requests.values()) == 19


def test_a_stop_reply_lists_the_number_and_removal_unlists_it(clean_db: str) -> None:
    setup_campaign(clean_db, csv_text=CUSTOMERS_CSV)
    with transaction(clean_db) as session:
        customer = session.scalars(select(Customer).where(Customer.phone == ROME[4])).one()
        opt_out(session, customer, MONDAY_8_UTC)
        account_id = customer.account_id
    with transaction(clean_db) as session:
        row = session.get_one(Suppression, (account_id, ROME[4]))
        assert row.source == SuppressionSource.STOP_REPLY
        assert remove_suppression(session, account_id, ROME[4])
        assert not remove_suppression(session, account_id, ROME[4])
