"""The do-not-contact list at scale: load 1M numbers, then scan a campaign against it.

Load: ``load_numbers`` (COPY into a temp table, ``INSERT ... ON CONFLICT DO NOTHING`` per
50k batch) fed by a generator of E.164 strings, one transaction, as ``dialer suppressions
load`` and ``POST /suppressions/csv`` run it; rows/s and the process's peak RSS growth.

Scan: one ``scan_campaign`` claiming the 100 due attempts of a 10k-contact campaign whose
account lists 0, then 1M numbers (none of them the campaign's, so both claim 100: the
figure is what the anti-join costs), then with 10 of the due contacts listed (they must
be closed, not claimed: a correctness check printed beside the timing).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import psutil
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from bench import fixtures
from bench.env import BenchEnv, truncate_all
from dialer.services.suppressions import SuppressionEntry, add_suppressions, load_numbers
from models import CallAttempt, Campaign, Customer
from models.session import transaction
from scheduler import ticks
from scheduler.scan import scan_campaign

CONTACTS = 10_000
DUE = 100


def _numbers(count: int) -> Iterator[str]:
    # +1 2xx... numbers: E.164 syntax (the fast path), never a +39 bench customer.
    return (f"+1{2_000_000_000 + i}\n" for i in range(count))


def _uow(url: str) -> Any:
    def uow() -> AbstractContextManager[Session]:
        return transaction(url)

    return uow


def _load(url: str, account_id: uuid.UUID, count: int) -> dict[str, Any]:
    process = psutil.Process()
    rss_before = process.memory_info().rss
    peak = rss_before
    started = time.perf_counter()
    with transaction(url) as session:
        report = load_numbers(
            session,
            account_id,
            _numbers(count),
            source="bench_dnc",
            listed_on=None,
            default_region=None,
            reject=lambda *_: None,
        )
        peak = max(peak, process.memory_info().rss)
    seconds = time.perf_counter() - started
    return {
        "numbers": count,
        "seconds": round(seconds, 2),
        "rows_per_s": round(count / seconds),
        "added": report.added,
        "rss_growth_mb": round((peak - rss_before) / 2**20, 1),
    }


def _due_ids(url: str, campaign_id: uuid.UUID) -> list[uuid.UUID]:
    with transaction(url) as session:
        return list(
            session.scalars(
                select(CallAttempt.id)
                .where(CallAttempt.campaign_id == campaign_id)
                .order_by(CallAttempt.id)
                .limit(DUE)
            )
        )


def _make_due(url: str, campaign_id: uuid.UUID, due: list[uuid.UUID], now: datetime) -> None:
    """Exactly ``due`` pending and due; every other attempt pending tomorrow."""
    with transaction(url) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.campaign_id == campaign_id)
            .values(
                status="pending",
                outcome=None,
                finished_at=None,
                last_error=None,
                queued_at=None,
                scheduled_at=text("now() + interval '1 day'"),
            )
        )
        session.execute(update(CallAttempt).where(CallAttempt.id.in_(due)).values(scheduled_at=now))


def _scan(
    url: str, campaign_id: uuid.UUID, due: list[uuid.UUID], now: datetime, reps: int
) -> dict[str, Any]:
    times: list[float] = []
    claimed: set[int] = set()
    suppressed: set[int] = set()
    for rep in range(3 + reps):
        _make_due(url, campaign_id, due, now)
        t0 = time.perf_counter()
        with transaction(url) as session:
            result = scan_campaign(session, campaign_id, now, fixtures.ALL_DAY, 500)
        if rep >= 3:  # three warm-ups (statement caches, prepared statements)
            times.append(time.perf_counter() - t0)
            claimed.add(len(result.claimed))
            suppressed.add(result.suppressed)
    return {
        "median_ms": round(1000 * statistics.median(times), 2),
        "min_ms": round(1000 * min(times), 2),
        "claimed": sorted(claimed),
        "suppressed": sorted(suppressed),
    }


def run(env: BenchEnv, numbers: int, reps: int) -> dict[str, Any]:
    url = env.database_url
    truncate_all(url)
    now = datetime.now(UTC)
    zone = fixtures.noon_zone(now)
    campaign_id = fixtures.create(url, "dnc-bench", zone, CONTACTS, concurrency=1000)
    fixtures.start(url, campaign_id, now)

    def materialize(topic: str, payload: dict[str, Any]) -> None:
        ticks.materialize(_uow(url), topic, uuid.UUID(payload["campaign_id"]), now, payload)

    ticks.relay_outbox(_uow(url), materialize, now)
    with transaction(url) as session:
        account_id = session.get_one(Campaign, campaign_id).account_id
    due = _due_ids(url, campaign_id)
    out: dict[str, Any] = {"contacts": CONTACTS, "due": len(due)}
    out["scan_empty_list"] = _scan(url, campaign_id, due, now, reps)
    out["load"] = _load(url, account_id, numbers)
    out["scan_full_list"] = _scan(url, campaign_id, due, now, reps)
    out["scan_ratio_full_empty"] = round(
        out["scan_full_list"]["median_ms"] / out["scan_empty_list"]["median_ms"], 2
    )
    with transaction(url) as session:
        listed = session.scalars(
            select(Customer.phone)
            .join(CallAttempt, CallAttempt.customer_id == Customer.id)
            .where(CallAttempt.id.in_(due[:10]))
        ).all()
        add_suppressions(
            session, account_id, [SuppressionEntry(p, "bench_dnc") for p in listed if p]
        )
    out["scan_ten_due_listed"] = _scan(url, campaign_id, due, now, 1)
    return out
