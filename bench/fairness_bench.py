"""Fairness under a shared rate limit: a 100k-contact campaign does not starve a 100-contact one.

Two accounts, one campaign each, started together (every first attempt due at t0): big
(100,000 contacts, concurrency 1000) and small (100 contacts). The small campaign's id
sorts after the big one's, the worst case for a first-in first-out dispatch queue. A
simulated clock ticks every second; each tick runs the real scan (``ticks.scan_all``,
real PostgreSQL) and then the provider takes ``RATE`` calls per second from the head of
the dispatch queue (claimed attempts are completed when taken: the rate limit, not
concurrency, is the bottleneck). Due-to-dispatch is measured in simulated seconds, so
the figure does not depend on the machine's load; the tick's wall time is reported too.

Two runs: without a queued bound (each campaign claims up to its concurrency, which is
what the scan did before) and with ``max_queued_attempts`` = 2 s of the rate limit
(claims shared fairly between the accounts).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench import fixtures
from bench.env import BenchEnv, truncate_all
from models.session import engine_for, transaction
from scheduler import ticks

RATE = 50  # calls per second the provider accepts
TICK = timedelta(seconds=1)
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
BIG_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
SMALL_ID = uuid.UUID("ffffffff-ffff-4fff-bfff-ffffffffffff")


def _load(url: str, big: int, small: int) -> float:
    started = time.perf_counter()
    truncate_all(url)
    with engine_for(url).begin() as conn:
        for campaign_id, size, concurrency in ((BIG_ID, big, 1000), (SMALL_ID, small, 100)):
            params = {"c": campaign_id, "n": size, "conc": concurrency, "t0": T0}
            for statement in _LOAD:
                conn.execute(text(statement), params)
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


_LOAD = (
    "INSERT INTO accounts (id, name) VALUES (:c, 'fair-' || :c)",
    "INSERT INTO agents (id, account_id, name, provider_agent_id) VALUES (:c, :c, 'a', 'sim')",
    """INSERT INTO campaigns (id, account_id, agent_id, name, status, timezone, concurrency,
                              window_start, window_end, window_weekdays, started_at)
       VALUES (:c, :c, :c, 'fair', 'running', 'UTC', :conc, '00:00', '23:59:59',
               '{0,1,2,3,4,5,6}', :t0)""",
    """CREATE TEMP TABLE gen ON COMMIT DROP AS
       SELECT g, gen_random_uuid() AS cust, gen_random_uuid() AS enr, gen_random_uuid() AS att
       FROM generate_series(1, :n) AS g""",
    """INSERT INTO customers (id, account_id, customer_id, name, phone, timezone)
       SELECT cust, :c, 'f-' || g, 'Name', '+3906' || lpad((g * 10 + 1)::text, 9, '0'), 'UTC'
       FROM gen""",
    "INSERT INTO enrollments (id, campaign_id, customer_id) SELECT enr, :c, cust FROM gen",
    """INSERT INTO call_attempts (id, enrollment_id, campaign_id, customer_id, attempt_no,
                                  status, idempotency_key, scheduled_at)
       SELECT att, enr, :c, cust, 1, 'pending', 'f:' || att, :t0 FROM gen""",
    "DROP TABLE gen",
)

_TAKE = text(
    """
    UPDATE call_attempts SET status = 'completed', outcome = 'answered',
           dispatched_at = :now, finished_at = :now
    WHERE id = ANY(CAST(:ids AS uuid[])) AND status = 'queued'
    RETURNING id, campaign_id
    """
)


def _run(url: str, plan: Any, small: int, max_ticks: int) -> dict[str, Any]:
    uow = lambda: transaction(url)  # noqa: E731
    queue: deque[uuid.UUID] = deque()
    waits: dict[uuid.UUID, list[float]] = {BIG_ID: [], SMALL_ID: []}
    tick_ms: list[float] = []
    now = T0
    for _ in range(max_ticks):
        t0 = time.perf_counter()
        if plan is None:  # the code before issue 15: no plan to pass
            ticks.scan_all(uow, now, fixtures.ALL_DAY, 500, queue.extend)
        else:
            ticks.scan_all(uow, now, fixtures.ALL_DAY, 500, queue.extend, plan)
        tick_ms.append(1000 * (time.perf_counter() - t0))
        taken = [queue.popleft() for _ in range(min(RATE, len(queue)))]
        with engine_for(url).begin() as conn:
            rows = conn.execute(_TAKE, {"ids": [str(i) for i in taken], "now": now}).all()
        order = {attempt_id: n for n, attempt_id in enumerate(taken)}
        for attempt_id, campaign_id in rows:  # the provider spreads them over the second
            at = now + TICK * (order[attempt_id] / RATE)
            waits[campaign_id].append((at - T0).total_seconds())
        if len(waits[SMALL_ID]) >= small:
            break
        now += TICK
    return {
        "small_dispatched": len(waits[SMALL_ID]),
        "small_p50_s": _pct(waits[SMALL_ID], 50),
        "small_p99_s": _pct(waits[SMALL_ID], 99),
        "big_dispatched": len(waits[BIG_ID]),
        "dispatched_per_s": round(
            (len(waits[BIG_ID]) + len(waits[SMALL_ID])) / max(len(tick_ms), 1), 1
        ),
        "ticks": len(tick_ms),
        "tick_wall_median_ms": round(sorted(tick_ms)[len(tick_ms) // 2], 1),
    }


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, (len(ordered) * q + 99) // 100 - 1)], 2)


def run(env: BenchEnv, big: int = 100_000, small: int = 100) -> dict[str, Any]:
    url = env.database_url
    out: dict[str, Any] = {"big": big, "small": small, "rate_per_s": RATE}
    if "ScanPlan" not in dir(ticks):  # the code before the fair scan: one run, as it is
        runs: dict[str, Any] = {"unbounded": None}
    else:
        runs = {
            "unbounded": ticks.ScanPlan(),  # each campaign claims up to its concurrency
            "fair": ticks.ScanPlan(max_queued=2 * RATE),  # 2 s of the rate limit queued at most
        }
    for name, plan in runs.items():
        load_s = _load(url, big, small)
        out[name] = _run(url, plan, small, max_ticks=60) | {"load_s": round(load_s, 1)}
    truncate_all(url)
    return out
