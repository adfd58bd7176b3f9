"""One scan tick at 10k, 100k and 1M enrollments: it must claim the same 100 due in flat time.

The campaign grows in place (10k, then +90k, then +900k rows of customers, enrollments
and call attempts), loaded set-based from ``generate_series`` into a temp table and
three ``INSERT ... SELECT``. Ids are time-ordered UUIDs (row number in the high bits,
like PostgreSQL 18's ``uuidv7()``), so primary-key and unique-index inserts append
instead of splitting random pages, and ``gen_random_uuid()`` (8 us a call on this
server) is not paid 3M times; what the scan reads is the same either way (the head of
``ix_call_attempts_due`` and 100 primary-key lookups). Row kinds, by number g:

- g <= 100: due now (pending, scheduled a minute ago): the scan claims exactly these;
- g % 10 < 6: pending in the future (tomorrow): in ``ix_call_attempts_due`` but not due;
- otherwise: terminal (completed/answered, enrollment unresolved), claimed today.

Each measurement is one ``scan_campaign`` transaction (lock, count slots, lock due,
claim, commit); between repetitions the 100 are put back to pending. Variant
``daily_cap`` sets ``max_calls_per_day`` (high enough never to bind), which makes the
scan read today's claim counter (``_claimed_today``) and add to it.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import event, text, update
from sqlalchemy.engine import Connection

from bench import fixtures
from bench.env import BenchEnv, truncate_all
from models import CallAttempt, Campaign
from models.session import engine_for, transaction
from scheduler.scan import scan_campaign

DUE = 100
DUE_INDEX = "ix_call_attempts_due"


def _load(
    env: BenchEnv,
    account_id: uuid.UUID,
    campaign_id: uuid.UUID,
    first: int,
    last: int,
    zone: str,
    now: datetime,
) -> float:
    started = time.perf_counter()
    params = {
        "first": first,
        "last": last,
        "account": account_id,
        "campaign": campaign_id,
        "zone": zone,
        "now": now,
    }
    with psycopg.connect(**env.conninfo) as conn:
        conn.execute("SET LOCAL synchronous_commit = off")  # a bulk load, not the workload
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        _skip_fk_triggers(conn)
        rebuild = _drop_plain_indexes(conn, ("customers", "enrollments", "call_attempts"))
        conn.execute(
            """
            CREATE TEMP TABLE gen ON COMMIT DROP AS
            SELECT g,
                   (lpad(to_hex(g), 12, '0') || '7000c' || lpad(to_hex(g), 15, '0'))::uuid
                     AS cust,
                   (lpad(to_hex(g), 12, '0') || '7000e' || lpad(to_hex(g), 15, '0'))::uuid
                     AS enr,
                   (lpad(to_hex(g), 12, '0') || '7000a' || lpad(to_hex(g), 15, '0'))::uuid
                     AS att,
                   CASE WHEN g <= 100 THEN 'due' WHEN g %% 10 < 6 THEN 'future' ELSE 'done' END
                     AS kind
            FROM generate_series(%(first)s::int, %(last)s::int) AS g
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO customers (id, account_id, customer_id, name, phone, timezone)
            SELECT cust, %(account)s, 'scan-' || lpad(g::text, 9, '0'), 'Name' || g,
                   '+3906' || lpad((g * 10 + 1)::text, 9, '0'), %(zone)s
            FROM gen
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO enrollments (id, campaign_id, customer_id, state, calls_made,
                                     unanswered_calls, closed_at, close_reason)
            SELECT enr, %(campaign)s, cust,
                   CASE kind WHEN 'done' THEN 'unresolved' ELSE 'active' END,
                   CASE kind WHEN 'done' THEN 1 ELSE 0 END, 0,
                   CASE kind WHEN 'done' THEN %(now)s::timestamptz - interval '30 minutes' END,
                   CASE kind WHEN 'done' THEN 'answered, goal not met' END
            FROM gen
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO call_attempts (id, enrollment_id, campaign_id, customer_id, attempt_no,
                                       status, outcome, idempotency_key, scheduled_at,
                                       queued_at, dispatched_at, finished_at)
            SELECT att, enr, %(campaign)s, cust, 1,
                   CASE kind WHEN 'done' THEN 'completed' ELSE 'pending' END,
                   CASE kind WHEN 'done' THEN 'answered' END,
                   'att:' || enr || ':1',
                   CASE kind
                     WHEN 'due' THEN %(now)s::timestamptz - interval '1 minute'
                                     - g * interval '1 millisecond'
                     WHEN 'future' THEN %(now)s::timestamptz + interval '1 day'
                                     + (g %% 86400) * interval '1 second'
                     ELSE %(now)s::timestamptz - interval '2 hours' END,
                   CASE kind WHEN 'done' THEN %(now)s::timestamptz - interval '1 hour'
                                               - (g %% 1800) * interval '1 second' END,
                   CASE kind WHEN 'done' THEN %(now)s::timestamptz - interval '1 hour'
                                               - (g %% 1800) * interval '1 second' END,
                   CASE kind WHEN 'done' THEN %(now)s::timestamptz - interval '40 minutes' END
            FROM gen
            """,
            params,
        )
        for definition in rebuild:  # sorted bulk builds: much faster than row-by-row
            conn.execute(definition)
        conn.commit()
    with psycopg.connect(**env.conninfo, autocommit=True) as conn:
        # What autovacuum would have done to a table that grew this much.
        conn.execute("VACUUM (ANALYZE) customers, enrollments, call_attempts")
    return time.perf_counter() - started


def _skip_fk_triggers(conn: psycopg.Connection[Any]) -> bool:
    """Rows are consistent by construction: skip per-row FK checks when allowed (superuser).

    ``session_replication_role = replica`` disables the FK triggers for this transaction
    only; on a configured server where we are not superuser the load just runs slower.
    """
    try:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
        return True
    except psycopg.Error:
        return False


def _drop_plain_indexes(conn: psycopg.Connection[Any], tables: tuple[str, ...]) -> list[str]:
    """Drop the indexes that back no constraint; return their definitions to rebuild.

    Primary keys and unique constraints stay (foreign keys point at them); the
    project's partial and secondary indexes (ix_*, uq_..._one_open_...) are rebuilt
    after the load from their own ``pg_get_indexdef``, so the schema is unchanged.
    """
    rows = conn.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        """,
        (list(tables),),
    ).fetchall()
    for name, _definition in rows:
        conn.execute(f"DROP INDEX {name}")
    return [str(definition) for _name, definition in rows]


class _Capture:
    """Statements a scan runs (for EXPLAIN) and the time each took."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.times: Counter[str] = Counter()

    def before(
        self, conn: Connection, _cursor: Any, statement: str, parameters: Any, *_args: Any
    ) -> None:
        conn.info["scan_t0"] = time.perf_counter()
        self.statements.append((statement, parameters))

    def after(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        t0 = conn.info.pop("scan_t0", time.perf_counter())
        self.times[_label(statement)] += time.perf_counter() - t0


def _label(statement: str) -> str:
    flat = " ".join(statement.split())
    if "FOR UPDATE OF call_attempts SKIP LOCKED" in flat or "CROSS JOIN LATERAL" in flat:
        return "lock_due (SELECT ... FOR UPDATE SKIP LOCKED)"
    if flat.startswith("SELECT campaigns.") and "FOR NO KEY UPDATE" in flat:
        return "lock_campaign (FOR UPDATE SKIP LOCKED)"
    if flat.startswith("SELECT campaign_daily_claims."):
        return "claimed_today count (daily cap)"
    if flat.startswith("INSERT INTO campaign_daily_claims"):
        return "count_claims upsert (daily cap)"
    if "count(*)" in flat:
        return "free_slots count (in flight)"
    if flat.startswith("UPDATE call_attempts"):
        return "claim UPDATE"
    return flat[:60]


def _reset(url: str, ids: list[uuid.UUID]) -> None:
    with transaction(url) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.id.in_(ids))
            .values(status="pending", queued_at=None)
        )


def _one_scan(url: str, campaign_id: uuid.UUID, now: datetime) -> tuple[float, list[uuid.UUID]]:
    t0 = time.perf_counter()
    with transaction(url) as session:
        result = scan_campaign(session, campaign_id, now, fixtures.ALL_DAY, 500)
    elapsed = time.perf_counter() - t0
    return elapsed, result.claimed


def _measure(url: str, campaign_id: uuid.UUID, now: datetime, reps: int) -> dict[str, Any]:
    engine = engine_for(url)
    times: list[float] = []
    claimed_counts: list[int] = []
    capture = _Capture()
    # Three warm-ups: psycopg prepares a statement on its 5th run on a connection, and
    # the compiled-statement caches fill; the first level must not pay for that.
    warmups = 3
    for rep in range(warmups + reps):
        last = rep == warmups + reps - 1
        if last:
            event.listen(engine, "before_cursor_execute", capture.before)
            event.listen(engine, "after_cursor_execute", capture.after)
        try:
            elapsed, claimed = _one_scan(url, campaign_id, now)
        finally:
            if last:
                event.remove(engine, "before_cursor_execute", capture.before)
                event.remove(engine, "after_cursor_execute", capture.after)
        if rep >= warmups:
            times.append(elapsed)
            claimed_counts.append(len(claimed))
        _reset(url, claimed)
    return {
        "median_ms": round(1000 * statistics.median(times), 2),
        "min_ms": round(1000 * min(times), 2),
        "max_ms": round(1000 * max(times), 2),
        "reps": len(times),
        "claimed": sorted(set(claimed_counts)),
        "statement_ms_last_rep": {k: round(1000 * v, 2) for k, v in capture.times.items()},
        "_statements": capture.statements,
    }


def _explain(url: str, statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) each statement of one scan, in order, then roll back."""
    plans: list[dict[str, Any]] = []
    with engine_for(url).connect() as conn:
        for statement, params in statements:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
            plan = "\n".join(r[0] for r in rows)
            plans.append(
                {"statement": _label(statement), "plan": plan, "uses_due_index": DUE_INDEX in plan}
            )
        conn.rollback()
    return plans


def _set_cap(url: str, campaign_id: uuid.UUID, cap: int | None) -> None:
    with transaction(url) as session:
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(max_calls_per_day=cap)
        )


def _counts(env: BenchEnv, campaign_id: uuid.UUID) -> dict[str, int]:
    with psycopg.connect(**env.conninfo, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM call_attempts WHERE campaign_id = %s GROUP BY status",
            (campaign_id,),
        ).fetchall()
        enrollments = conn.execute(
            "SELECT count(*) FROM enrollments WHERE campaign_id = %s", (campaign_id,)
        ).fetchone()
    out = {str(s): int(n) for s, n in rows}
    out["enrollments"] = int(enrollments[0]) if enrollments else 0
    return out


def run(env: BenchEnv, levels: tuple[int, ...], reps: int) -> dict[str, Any]:
    url = env.database_url
    truncate_all(url)
    now = datetime.now(UTC)
    zone = fixtures.noon_zone(now)
    campaign_id = fixtures.create(url, "scan-bench", zone, 0, concurrency=100)
    fixtures.start(url, campaign_id, now)
    with transaction(url) as session:
        account_id = session.execute(
            text("SELECT account_id FROM campaigns WHERE id = :c"), {"c": campaign_id}
        ).scalar_one()
        session.execute(text("DELETE FROM outbox"))  # nobody relays here; keep it empty
    out: dict[str, Any] = {"due_per_scan": DUE, "levels": [], "zone": zone}
    loaded = 0
    for level in levels:
        load_s = _load(env, account_id, campaign_id, loaded + 1, level, zone, now)
        loaded = level
        _set_cap(url, campaign_id, None)
        plain = _measure(url, campaign_id, now, reps)
        plans = _explain(url, plain.pop("_statements"))
        _set_cap(url, campaign_id, 10_000_000)
        capped = _measure(url, campaign_id, now, reps)
        capped_plans = _explain(url, capped.pop("_statements"))
        _set_cap(url, campaign_id, None)
        lock_due = next((p for p in plans if p["statement"].startswith("lock_due")), None)
        cap_plan = next(
            (p for p in capped_plans if p["statement"].startswith("claimed_today")), None
        )
        out["levels"].append(
            {
                "enrollments": level,
                "rows": _counts(env, campaign_id),
                "load_s": round(load_s, 2),
                "scan": plain,
                "scan_daily_cap": capped,
                "due_index_used": bool(lock_due and lock_due["uses_due_index"]),
                "explain_lock_due": lock_due["plan"] if lock_due else None,
                "explain_claimed_today": cap_plan["plan"] if cap_plan else None,
                "explain_all": plans,
            }
        )
    first, last = out["levels"][0], out["levels"][-1]
    out["ratio_last_first"] = round(last["scan"]["median_ms"] / first["scan"]["median_ms"], 2)
    out["ratio_last_first_daily_cap"] = round(
        last["scan_daily_cap"]["median_ms"] / first["scan_daily_cap"]["median_ms"], 2
    )
    return out
