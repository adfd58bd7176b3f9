"""Beat duties across many running campaigns: their cost must follow due work, not the fleet.

At each level, N running campaigns (5 customers each, 10 campaigns per account) are
loaded set-based, then one whole beat duty is timed, the median of a few repetitions:

- idle scan: every attempt is pending for tomorrow, nothing is due;
- claiming scan: 5 attempts due in every campaign, all claimed (then put back);
- finish: the finish duty with nothing to finish (every campaign has active enrollments);
- where the code has them: the same scan split into 4 partitions run one after another
  (the slowest one; the partitions part runs them on real Celery workers in parallel),
  and the finish safety sweep (a slow duty).

``ticks.scan_all`` and ``ticks.finish_all`` keep their signatures, so this file also
measures the code before the set-based scan (the per-campaign loop) for the ratios.
"""

from __future__ import annotations

import inspect
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench import fixtures
from bench.env import BenchEnv, truncate_all
from dialer import gc_tuning
from models.session import engine_for, transaction
from scheduler import ticks

CUSTOMERS_PER_CAMPAIGN = 5
CAMPAIGNS_PER_ACCOUNT = 10
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday, inside every window


def _uow(url: str) -> Callable[[], Any]:
    return lambda: transaction(url)


def load(url: str, campaigns: int) -> float:
    started = time.perf_counter()
    truncate_all(url)
    accounts = max(1, campaigns // CAMPAIGNS_PER_ACCOUNT)
    params = {"accounts": accounts, "campaigns": campaigns, "future": NOW + timedelta(days=1)}
    with engine_for(url).begin() as conn:
        for statement in _LOAD:
            conn.execute(text(statement), params)
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


_LOAD = (
    """INSERT INTO accounts (id, name)
       SELECT gen_random_uuid(), 'bench-' || a FROM generate_series(1, :accounts) AS a""",
    """INSERT INTO agents (id, account_id, name, provider_agent_id)
       SELECT gen_random_uuid(), id, 'agent', 'sim' FROM accounts""",
    """CREATE TEMP TABLE acct ON COMMIT DROP AS
       SELECT row_number() OVER (ORDER BY a.id) - 1 AS k, a.id, g.id AS agent
       FROM accounts a JOIN agents g ON g.account_id = a.id""",
    """INSERT INTO campaigns (id, account_id, agent_id, name, status, timezone, concurrency,
                              window_start, window_end, window_weekdays, started_at)
       SELECT gen_random_uuid(), acct.id, acct.agent, 'c-' || g, 'running', 'UTC', 10,
              '00:00', '23:59:59', '{0,1,2,3,4,5,6}', now()
       FROM generate_series(1, :campaigns) AS g JOIN acct ON acct.k = g % :accounts""",
    """CREATE TEMP TABLE gen ON COMMIT DROP AS
       SELECT c.id AS campaign, c.account_id AS account, k, gen_random_uuid() AS cust,
              gen_random_uuid() AS enr, gen_random_uuid() AS att
       FROM campaigns c, generate_series(1, 5) AS k""",
    """INSERT INTO customers (id, account_id, customer_id, name, phone, timezone)
       SELECT cust, account, 'cu-' || att, 'Name', '+3906' || lpad((k * 10 + 1)::text, 9, '0'),
              'UTC' FROM gen""",
    """INSERT INTO enrollments (id, campaign_id, customer_id)
       SELECT enr, campaign, cust FROM gen""",
    """INSERT INTO call_attempts (id, enrollment_id, campaign_id, customer_id, attempt_no,
                                  status, idempotency_key, scheduled_at)
       SELECT att, enr, campaign, cust, 1, 'pending', 'att:' || enr || '/1', :future FROM gen""",
)


def make_due(url: str) -> None:
    with engine_for(url).begin() as conn:
        conn.execute(
            text(
                "UPDATE call_attempts SET status = 'pending', queued_at = NULL, scheduled_at = :t"
            ),
            {"t": NOW - timedelta(minutes=1)},
        )
        conn.execute(text("DELETE FROM campaign_daily_claims"))
    _vacuum(url)


def _vacuum(url: str) -> None:
    """What autovacuum does between ticks of a live system: each reset rewrites every row,
    and rewriting again on top of the dead tuples of the last one would measure the
    bench's own churn, not the scan."""
    with engine_for(url).connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")
        auto.execute(text("VACUUM (ANALYZE) call_attempts, campaigns, campaign_daily_claims"))


def _make_idle(url: str) -> None:
    with engine_for(url).begin() as conn:
        conn.execute(
            text(
                "UPDATE call_attempts SET status = 'pending', queued_at = NULL, scheduled_at = :t"
            ),
            {"t": NOW + timedelta(days=1)},
        )
        if _has_column(conn, "next_due_at"):  # what the scan would have recomputed
            conn.execute(
                text("UPDATE campaigns SET next_due_at = :t"), {"t": NOW + timedelta(days=1)}
            )
    _vacuum(url)


def _has_column(conn: Any, column: str) -> bool:
    q = (
        "SELECT 1 FROM information_schema.columns"
        " WHERE table_name = 'campaigns' AND column_name = :c"
    )
    return conn.execute(text(q), {"c": column}).first() is not None


def _timed(
    fn: Callable[[], Any], reps: int, reset: Callable[[], None] | None = None
) -> dict[str, Any]:
    times: list[float] = []
    outputs: list[Any] = []
    for _ in range(reps):
        if reset is not None:
            reset()
        t0 = time.perf_counter()
        outputs.append(fn())
        times.append(time.perf_counter() - t0)
    return {
        "median_ms": round(1000 * statistics.median(times), 2),
        "min_ms": round(1000 * min(times), 2),
        "max_ms": round(1000 * max(times), 2),
        "reps": reps,
        "_outputs": outputs,
    }


def _level(url: str, campaigns: int, reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"campaigns": campaigns, "load_s": round(load(url, campaigns), 2)}
    uow = _uow(url)
    legal = fixtures.ALL_DAY

    def scan() -> int:
        claimed: list[uuid.UUID] = []
        ticks.scan_all(uow, NOW, legal, 500, claimed.extend)
        return len(claimed)

    _make_idle(url)
    scan()  # warm-up: statement caches, prepared statements
    idle = _timed(scan, reps)
    out["idle"] = _strip(idle) | {"claimed": sorted(set(idle["_outputs"]))}
    claiming = _timed(scan, reps, reset=lambda: make_due(url))
    out["claiming"] = _strip(claiming) | {"claimed": sorted(set(claiming["_outputs"]))}
    _make_idle(url)
    finish = _timed(lambda: len(ticks.finish_all(uow, NOW)), reps)
    out["finish"] = _strip(finish) | {"finished": sorted(set(finish["_outputs"]))}
    if hasattr(ticks, "finish_sweep"):
        sweep = _timed(lambda: len(ticks.finish_sweep(uow, NOW)), reps)
        out["finish_sweep"] = _strip(sweep)
    if hasattr(ticks, "scan_partition"):
        out["partitions_4"] = _partitioned(url, reps, 4)
    return out


def _partitioned(url: str, reps: int, count: int) -> dict[str, Any]:
    """Claiming scan in `count` partitions, one after another: each partition's time."""
    from scheduler.scan import Partition

    uow = _uow(url)
    slowest: list[float] = []
    claimed_total: list[int] = []
    for _ in range(reps):
        make_due(url)
        per: list[float] = []
        claimed: list[uuid.UUID] = []
        for index in range(count):
            t0 = time.perf_counter()
            ticks.scan_partition(
                uow, NOW, fixtures.ALL_DAY, 500, claimed.extend, Partition(index, count)
            )
            per.append(time.perf_counter() - t0)
        slowest.append(max(per))
        claimed_total.append(len(claimed))
    return {
        "slowest_partition_median_ms": round(1000 * statistics.median(slowest), 2),
        "claimed": sorted(set(claimed_total)),
    }


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not k.startswith("_")}


def run(env: BenchEnv, levels: tuple[int, ...], reps: int) -> dict[str, Any]:
    url = env.database_url
    # As a worker or beat process does at start: with Python's default threshold the
    # collector took ~40% of the claiming tick's Python time (50,000 rows of UUIDs).
    gc_tuning.tune(env.settings.gc_threshold)
    out: dict[str, Any] = {
        "customers_per_campaign": CUSTOMERS_PER_CAMPAIGN,
        "campaigns_per_account": CAMPAIGNS_PER_ACCOUNT,
        "set_based": "ScanPlan" in dir(ticks),
        "scan_all_signature": str(inspect.signature(ticks.scan_all)),
        "levels": [_level(url, n, reps) for n in levels],
    }
    first, last = out["levels"][0], out["levels"][-1]
    for key in ("idle", "claiming", "finish"):
        base = max(first[key]["median_ms"], 0.01)
        out[f"ratio_{key}_last_first"] = round(last[key]["median_ms"] / base, 2)
    truncate_all(url)
    return out
