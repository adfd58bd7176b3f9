"""The scan across many campaigns, on real PostgreSQL: set-based, partitioned, fair.

Every per-campaign rule of the one-campaign scan holds when one transaction claims for
many campaigns (concurrency, daily cap, window, pause, two scans at once); the
campaigns' next-due times are kept by triggers so a tick with nothing due reads no
campaign; partitions split the fleet without overlap and a lost one is redone by the
next tick; a pause and a last customer's STOP during a scan give no call; a campaign
finishes when its last enrollment closes, and the safety sweep finishes one whose mark
was lost.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, create_engine, select, text, update

from dialer.services.lifecycle import lock_campaign, pause_campaign
from dialer.services.messages import opt_out
from models import CallAttempt, Campaign, Customer, DailyClaims, Enrollment
from models.session import transaction
from scheduler import ticks
from scheduler.scan import Partition, ScanLimits, scan_chunk
from tests.integration.pipeline_support import (
    LEGAL,
    MONDAY_8_UTC,
    campaign_status,
    customers_csv,
    make_driver,
    relay,
    rome_csv,
    rome_phone,
    setup_campaign,
    start,
    uow_for,
)

T = TypeVar("T")
ROME = ZoneInfo("Europe/Rome")
NO_WHATSAPP: dict[str, Any] = {"whatsapp_channel": None, "whatsapp_first_message": None}
EVERYONE_ANSWERS: dict[str, Any] = {
    "answer_rate": 1.0,
    "voicemail_rate": 0.0,
    "failure_rate": 0.0,
    "busy_rate": 0.0,
    "no_answer_rate": 0.0,
    "whatsapp_reply_rate": 0.0,
}


def started(
    url: str, spec: dict[str, Any], csv_text: str, now: datetime = MONDAY_8_UTC
) -> uuid.UUID:
    """A running campaign whose first attempts exist (the start event was handled)."""
    campaign_id = setup_campaign(url, {**NO_WHATSAPP, **spec}, csv_text)
    start(url, campaign_id, now)
    relay(make_driver(url, None, now=now))
    return campaign_id


def scan(url: str, now: datetime = MONDAY_8_UTC, **limits: Any) -> list[uuid.UUID]:
    claimed: list[uuid.UUID] = []
    plan = ticks.ScanPlan(**limits)
    ticks.scan_all(uow_for(url), now, LEGAL, 500, claimed.extend, plan)
    return claimed


def claimed_per_campaign(url: str, ids: list[uuid.UUID]) -> Counter[uuid.UUID]:
    with transaction(url) as session:
        rows = session.scalars(select(CallAttempt.campaign_id).where(CallAttempt.id.in_(ids)))
        return Counter(rows)


def next_due(url: str, campaign_id: uuid.UUID) -> datetime | None:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).next_due_at


def in_threads(*fns: Callable[[], T]) -> list[T]:
    with ThreadPoolExecutor(len(fns)) as pool:
        return [f.result(timeout=30) for f in [pool.submit(fn) for fn in fns]]


# --------------------------------------------------------------------------- one scan, many rules


def test_one_scan_keeps_each_campaigns_rules(clean_db: str) -> None:
    three_slots = started(clean_db, {"name": "slots", "concurrency": 3}, rome_csv(8))
    capped = started(
        clean_db, {"name": "capped", "concurrency": 5, "max_calls_per_day": 2}, rome_csv(6)
    )
    paused = started(clean_db, {"name": "paused", "concurrency": 5}, rome_csv(4))
    new_york = started(  # 03:00 in New York: every contact waits for the window to open
        clean_db, {"name": "ny", "concurrency": 5}, customers_csv(["+12125550101"] * 1)
    )
    with transaction(clean_db) as session:
        pause_campaign(session, lock_campaign(session, paused), MONDAY_8_UTC)

    claimed = claimed_per_campaign(clean_db, scan(clean_db))

    assert claimed == Counter({three_slots: 3, capped: 2})
    with transaction(clean_db) as session:
        counter = session.scalars(
            select(DailyClaims.claimed).where(DailyClaims.campaign_id == capped)
        ).one()
        ny_attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.campaign_id == new_york)
        ).one()
    assert counter == 2
    assert ny_attempt.status == "pending"
    assert ny_attempt.scheduled_at.astimezone(ZoneInfo("America/New_York")).hour == 9
    # What each campaign's next tick needs: still due, tomorrow, the window's opening.
    assert next_due(clean_db, three_slots) == MONDAY_8_UTC
    midnight_rome = datetime(2026, 11, 24, tzinfo=ROME)
    assert next_due(clean_db, capped) == midnight_rome
    assert next_due(clean_db, new_york) == ny_attempt.scheduled_at

    # The next tick: the slots are taken, the cap is used up, the paused one stays out.
    assert scan(clean_db) == []
    next_day = midnight_rome + timedelta(hours=9)
    assert claimed_per_campaign(clean_db, scan(clean_db, next_day))[capped] == 2


def test_next_due_is_kept_so_an_idle_tick_reads_no_campaign(clean_db: str) -> None:
    campaign_id = started(clean_db, {"concurrency": 10}, rome_csv(3))
    assert next_due(clean_db, campaign_id) == MONDAY_8_UTC  # the insert trigger
    assert len(scan(clean_db)) == 3
    assert next_due(clean_db, campaign_id) is None  # nothing pending any more

    with transaction(clean_db) as session:
        idle = scan_chunk(session, MONDAY_8_UTC, LEGAL, ScanLimits())
    assert idle.campaigns == 0

    # A dispatch that defers an attempt puts it back to pending: the update trigger.
    later = MONDAY_8_UTC + timedelta(minutes=5)
    with transaction(clean_db) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.campaign_id == campaign_id)
            .values(status="pending", queued_at=None, scheduled_at=later)
        )
    assert next_due(clean_db, campaign_id) == later
    assert scan(clean_db, later - timedelta(seconds=1)) == []
    assert len(scan(clean_db, later)) == 3


# --------------------------------------------------------------------------- two scans at once


def test_two_scans_across_campaigns_never_claim_twice(clean_db: str) -> None:
    campaigns = [
        started(clean_db, {"name": f"c{i}", "concurrency": 2}, rome_csv(5)) for i in range(6)
    ]
    # The worst interleaving: the second scan runs while the first holds its locks.
    first_claimed, second_done = threading.Event(), threading.Event()

    def first_scan() -> list[uuid.UUID]:
        with transaction(clean_db) as session:
            result = scan_chunk(session, MONDAY_8_UTC, LEGAL, ScanLimits())
            first_claimed.set()
            second_done.wait(timeout=10)
        return result.claimed

    def second_scan() -> list[uuid.UUID]:
        first_claimed.wait(timeout=10)
        try:
            return scan(clean_db)
        finally:
            second_done.set()

    first, second = in_threads(first_scan, second_scan)
    assert len(first) == 12
    assert second == []

    for _ in range(3):  # free-running, after putting everything back
        with transaction(clean_db) as session:
            session.execute(update(CallAttempt).values(status="pending", queued_at=None))
        one, two = in_threads(lambda: scan(clean_db), lambda: scan(clean_db))
        assert len(one + two) == len(set(one + two))
        per = claimed_per_campaign(clean_db, one + two)
        assert set(per) <= set(campaigns)
        assert max(per.values()) <= 2


# --------------------------------------------------------------------------- partitions


def test_partitions_split_the_fleet_and_a_lost_one_is_redone(clean_db: str) -> None:
    campaigns = [
        started(clean_db, {"name": f"p{i}", "concurrency": 1}, rome_csv(2)) for i in range(12)
    ]
    uow = uow_for(clean_db)
    by_partition: dict[int, list[uuid.UUID]] = {}
    for index in (0, 1, 3):  # partition 2's task is lost
        claimed: list[uuid.UUID] = []
        ticks.scan_partition(uow, MONDAY_8_UTC, LEGAL, 500, claimed.extend, Partition(index, 4))
        by_partition[index] = list(claimed_per_campaign(clean_db, claimed))
    seen = [c for ids in by_partition.values() for c in ids]
    assert len(seen) == len(set(seen))  # no campaign in two partitions
    lost = set(campaigns) - set(seen)
    assert lost  # 12 campaigns over 4 partitions: partition 2 holds some

    # The next tick, whole: the lost partition's campaigns are claimed, nobody twice.
    later = MONDAY_8_UTC + timedelta(seconds=2)
    again = claimed_per_campaign(clean_db, scan(clean_db, later, partitions=4))
    assert set(again) == lost
    assert set(again.values()) == {1}


def test_a_campaign_paused_during_a_scan_gets_no_new_claims(clean_db: str) -> None:
    campaign_id = started(clean_db, {"concurrency": 2}, rome_csv(6))
    scanning, paused = threading.Event(), threading.Event()

    def scan_holding_the_row() -> list[uuid.UUID]:
        with transaction(clean_db) as session:
            result = scan_chunk(session, MONDAY_8_UTC, LEGAL, ScanLimits())
            scanning.set()
            paused.wait(timeout=1)  # the pause waits for this transaction's row lock
        return result.claimed

    def pause() -> None:
        scanning.wait(timeout=10)
        with transaction(clean_db) as session:
            pause_campaign(session, lock_campaign(session, campaign_id), MONDAY_8_UTC)
        paused.set()

    claimed, _ = in_threads(scan_holding_the_row, pause)
    assert len(claimed) == 2  # claimed before the pause: dispatch re-checks (rule 5)
    with transaction(clean_db) as session:
        session.execute(update(CallAttempt).values(status="pending", queued_at=None))
    assert scan(clean_db, partitions=3) == []
    assert campaign_status(clean_db, campaign_id) == "paused"


def test_a_campaign_whose_last_customer_stops_during_a_scan_finishes_without_a_call(
    clean_db: str,
) -> None:
    """The scan claims the last customer's call while a STOP reply closes them: the
    opt-out waits for the scan's row lock, then cancels the claimed attempt; the finish
    duty ends the campaign and the claimed id, handed to dispatch, places no call."""
    campaign_id = started(clean_db, {"concurrency": 2}, rome_csv(1))
    scanning, stopped = threading.Event(), threading.Event()

    def scan_holding_the_rows() -> list[uuid.UUID]:
        with transaction(clean_db) as session:
            result = scan_chunk(session, MONDAY_8_UTC, LEGAL, ScanLimits())
            scanning.set()
            stopped.wait(timeout=1)  # the opt-out waits for this transaction's locks
        return result.claimed

    def stop_reply() -> bool:
        scanning.wait(timeout=10)
        with transaction(clean_db) as session:
            customer = session.scalars(
                select(Customer).join(Enrollment).where(Enrollment.campaign_id == campaign_id)
            ).one()
            opt_out(session, customer, MONDAY_8_UTC)
        stopped.set()
        return True

    claimed, _ = in_threads(scan_holding_the_rows, stop_reply)
    assert len(claimed) == 1  # claimed before the STOP committed

    driver = make_driver(clean_db, None, EVERYONE_ANSWERS, MONDAY_8_UTC)
    # The dispatch task the scan enqueued after its commit:
    batch = ticks.dispatch_many(driver.uow, driver.voice, claimed, driver.clock, driver.limits)
    assert batch.verdicts["placed"] == 0
    assert sum(batch.verdicts.values()) == 1
    with transaction(clean_db) as session:
        attempt = session.get_one(CallAttempt, claimed[0])
        assert (attempt.status, attempt.dispatched_at) == ("canceled", None)
    assert ticks.finish_all(uow_for(clean_db), MONDAY_8_UTC) == [campaign_id]
    assert campaign_status(clean_db, campaign_id) == "done"


# --------------------------------------------------------------------------- finish


def test_a_campaign_finishes_when_its_last_enrollment_closes(clean_db: str) -> None:
    campaign_id = setup_campaign(clean_db, {**NO_WHATSAPP, "concurrency": 5}, rome_csv(3))
    driver = make_driver(clean_db, None, EVERYONE_ANSWERS, MONDAY_8_UTC)
    driver.sweep_every = 0  # no safety sweep: only the mark can finish it
    start(clean_db, campaign_id, MONDAY_8_UTC)
    marks: list[datetime | None] = []
    for _ in range(40):
        driver.tick()
        with transaction(clean_db) as session:
            campaign = session.get_one(Campaign, campaign_id)
            marks.append(campaign.finish_check_at)
            if campaign.status == "done":
                break
        driver.clock.advance(timedelta(seconds=30))
    assert campaign_status(clean_db, campaign_id) == "done"
    assert driver.stats["finished"] == 1
    assert None in marks  # the start's mark was cleared while enrollments were active


def test_the_safety_sweep_finishes_a_campaign_whose_mark_was_lost(clean_db: str) -> None:
    quiet = setup_campaign(clean_db, {**NO_WHATSAPP, "name": "lost mark"}, rome_csv(2))
    busy = started(clean_db, {"name": "busy"}, rome_csv(2))
    start(clean_db, quiet, MONDAY_8_UTC)
    relay(make_driver(clean_db, None, now=MONDAY_8_UTC))
    uow = uow_for(clean_db)
    # More than three last enrollments closed by concurrent transactions: each saw the
    # others active, so none marked the campaign. Forced here: close, drop the mark.
    with transaction(clean_db) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.campaign_id == quiet)
            .values(status="canceled", outcome="canceled", finished_at=MONDAY_8_UTC)
        )
        session.execute(
            update(Enrollment)
            .where(Enrollment.campaign_id == quiet)
            .values(state="unresolved", closed_at=MONDAY_8_UTC)
        )
    assert next_mark(clean_db, quiet) is not None  # the trigger marked it
    with transaction(clean_db) as session:
        session.execute(update(Campaign).where(Campaign.id == quiet).values(finish_check_at=None))

    assert ticks.finish_all(uow, MONDAY_8_UTC) == []  # nothing marked: nothing read
    assert campaign_status(clean_db, quiet) == "running"
    assert ticks.finish_sweep(uow, MONDAY_8_UTC) == [quiet]
    assert campaign_status(clean_db, quiet) == "done"
    assert campaign_status(clean_db, busy) == "running"


def test_two_last_closes_in_concurrent_transactions_still_mark_the_campaign(
    clean_db: str,
) -> None:
    """The finish-mark race: each close still sees the other enrollment active."""
    campaign_id = _running(clean_db, "race", 2)
    uow = uow_for(clean_db)
    _end_attempts(clean_db, campaign_id)
    with transaction(clean_db) as session:
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(finish_check_at=None)
        )
    first, second = _enrollments(clean_db, campaign_id)
    engine = create_engine(clean_db.replace("postgresql://", "postgresql+psycopg://", 1))

    def close(conn: Connection, enrollment_id: uuid.UUID) -> None:
        conn.execute(
            update(Enrollment)
            .where(Enrollment.id == enrollment_id)
            .values(state="unresolved", closed_at=MONDAY_8_UTC)
        )

    def close_second() -> None:
        with engine.begin() as conn:
            close(conn, second)

    try:
        with engine.connect() as a:
            with a.begin():
                close(a, first)  # not committed: the second close still sees it active
                closing = threading.Thread(target=close_second)
                closing.start()
                # Let the second close run while the first is open: it either ends (it
                # did not touch the campaign) or waits for the first's campaign row.
                waited = _wait_for(lambda: not closing.is_alive() or _blocked(engine))
                assert waited
            closing.join(timeout=10)
            assert not closing.is_alive()
    finally:
        engine.dispose()
    assert next_mark(clean_db, campaign_id) is not None
    assert ticks.finish_all(uow, MONDAY_8_UTC) == [campaign_id]
    assert campaign_status(clean_db, campaign_id) == "done"


def test_the_finish_duty_keeps_the_mark_through_the_last_closes(clean_db: str) -> None:
    campaign_id = _running(clean_db, "near end", 4)
    uow = uow_for(clean_db)
    assert ticks.finish_all(uow, MONDAY_8_UTC) == []  # the start's mark: 4 active, dropped
    assert next_mark(clean_db, campaign_id) is None
    enrollments = _enrollments(clean_db, campaign_id)
    _close_enrollments(clean_db, enrollments[:1])  # 3 left: more than the last few
    assert next_mark(clean_db, campaign_id) is None
    _close_enrollments(clean_db, enrollments[1:2])  # 2 left: the close marks it
    assert next_mark(clean_db, campaign_id) is not None
    assert ticks.finish_all(uow, MONDAY_8_UTC) == []
    assert next_mark(clean_db, campaign_id) is not None  # kept while 2 or fewer are active
    _close_enrollments(clean_db, enrollments[2:])
    _end_attempts(clean_db, campaign_id)
    assert ticks.finish_all(uow, MONDAY_8_UTC) == [campaign_id]


def _running(url: str, name: str, contacts: int) -> uuid.UUID:
    """A started campaign of Rome contacts whose first attempts exist."""
    campaign_id = setup_campaign(url, {**NO_WHATSAPP, "name": name}, rome_csv(contacts))
    start(url, campaign_id, MONDAY_8_UTC)
    relay(make_driver(url, None, now=MONDAY_8_UTC))
    return campaign_id


def _end_attempts(url: str, campaign_id: uuid.UUID) -> None:
    with transaction(url) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.campaign_id == campaign_id)
            .values(status="canceled", outcome="canceled", finished_at=MONDAY_8_UTC)
        )


def _enrollments(url: str, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    with transaction(url) as session:
        return list(
            session.scalars(
                select(Enrollment.id)
                .where(Enrollment.campaign_id == campaign_id)
                .order_by(Enrollment.id)
            )
        )


def _close_enrollments(url: str, ids: list[uuid.UUID]) -> None:
    with transaction(url) as session:
        session.execute(
            update(Enrollment)
            .where(Enrollment.id.in_(ids))
            .values(state="unresolved", closed_at=MONDAY_8_UTC)
        )


def _blocked(engine: Engine) -> bool:
    """Whether some other session of this database waits for a row lock."""
    with engine.connect() as conn:
        waiting = conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
        )
    return bool(waiting)


def _wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def next_mark(url: str, campaign_id: uuid.UUID) -> datetime | None:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).finish_check_at


# --------------------------------------------------------------------------- fairness


def test_a_claim_budget_is_shared_fairly_across_accounts(clean_db: str) -> None:
    big = started(clean_db, {"name": "big", "concurrency": 100}, rome_csv(60))
    small = started(clean_db, {"name": "small", "concurrency": 100}, rome_csv(5))
    # 20 attempts may still be queued fleet-wide: the small account's 5 all go first.
    claimed = claimed_per_campaign(clean_db, scan(clean_db, max_queued=20))
    assert claimed == Counter({small: 5, big: 15})
    # The queue is full now: nothing more until dispatch takes some.
    assert scan(clean_db, max_queued=20) == []


def test_an_account_concurrency_cap_spans_its_campaigns(clean_db: str) -> None:
    first = setup_campaign(clean_db, {**NO_WHATSAPP, "name": "one", "concurrency": 5}, rome_csv(5))
    with transaction(clean_db) as session:
        account_id = session.get_one(Campaign, first).account_id
    second = setup_campaign(
        clean_db,
        {**NO_WHATSAPP, "name": "two", "concurrency": 5},
        customers_csv([rome_phone(100 + n) for n in range(5)]),
    )
    with transaction(clean_db) as session:  # the same tenant owns both
        session.execute(update(Campaign).where(Campaign.id == second).values(account_id=account_id))
    driver = make_driver(clean_db, None, now=MONDAY_8_UTC)
    for campaign_id in (first, second):
        start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)
    claimed = claimed_per_campaign(clean_db, scan(clean_db, account_concurrency=4))
    assert sum(claimed.values()) == 4
    assert claimed == Counter({first: 2, second: 2})
    assert scan(clean_db, account_concurrency=4) == []  # 4 in flight: the account is full
