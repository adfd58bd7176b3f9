"""The other big-N paths of issue 15: CSV import, starting a big campaign, the call list's q.

- ``import``: ``dialer customers import --partial`` (the real command, a subprocess) of a
  generated CSV of N rows (1% bad: 0.4% bad e-mails, 0.3% bad phones, 0.3% repeats);
  rows/s over the whole command and its peak RSS (``wait4`` rusage of the child).
- ``start``: a draft campaign with N active enrollments (set-based) is started and its
  ``campaign.started`` handler (``scheduler.ticks.materialize``, what the Celery task
  runs) timed until every enrollment has its first attempt; the handler's peak RSS growth.
- ``search``: GET /calls with ``q`` (``calls_query.list_calls``, the route's service)
  over N attempts (4 per customer, set-based): p50/p99 of a few terms, with the
  trigram indexes and with them dropped, and ``EXPLAIN (ANALYZE, BUFFERS)`` of the page.
"""

from __future__ import annotations

import csv
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from bench import fixtures
from bench.env import REPO, BenchEnv, truncate_all
from dialer.services.calls_query import build_query, list_calls
from dialer.services.outbox import CAMPAIGN_STARTED
from models.session import engine_for, transaction
from scheduler import ticks

FIRST_NAMES = ("Anna", "Marco", "Giulia", "Luca", "Sara", "Paolo", "Elena", "Davide", "Chiara")
SURNAMES = ("Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno")
TRIGRAM_INDEXES = (
    "ix_customers_name_trgm",
    "ix_customers_surname_trgm",
    "ix_customers_phone_trgm",
    "ix_customers_customer_id_trgm",
    "ix_call_attempts_conv_id_trgm",
)


# ---------------------------------------------------------------------------- import


def write_csv(path: Path, rows: int) -> dict[str, int]:
    """N data rows, about 1% of them bad in a known way; returns what was planted."""
    planted = {"bad_email": 0, "bad_phone": 0, "repeat": 0}
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "name", "surname", "email", "phone", "timezone", "plan"])
        for g in range(1, rows + 1):
            email = f"c{g}@example.com"
            phone = f"+3906{g * 10 + 1:09d}"
            customer_id = f"imp-{g:09d}"
            if g % 1000 in (3, 250, 500, 750):
                email, planted["bad_email"] = "not-an-email", planted["bad_email"] + 1
            elif g % 1000 in (5, 505, 905):
                phone, planted["bad_phone"] = "12", planted["bad_phone"] + 1
            elif g % 1000 in (7, 507, 907) and g > 1:
                customer_id, planted["repeat"] = f"imp-{g - 1:09d}", planted["repeat"] + 1
            writer.writerow(
                [customer_id, FIRST_NAMES[g % 9], SURNAMES[g % 8], email, phone, "", "gold"]
            )
    return planted


def run_import(env: BenchEnv, rows_levels: tuple[int, ...], reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"levels": []}
    for rows in rows_levels:
        path = env.work_dir / f"import_{rows}.csv"
        planted = write_csv(path, rows)
        runs = []
        for rep in range(reps):
            truncate_all(env.database_url)
            zone = fixtures.noon_zone()
            fixtures.create(env.database_url, f"import-{rows}-{rep}", zone, 0)
            runs.append(_import_once(env, f"import-{rows}-{rep}", path))
        seconds = statistics.median(r["seconds"] for r in runs)
        out["levels"].append(
            {
                "rows": rows,
                "file_mb": round(path.stat().st_size / 2**20, 1),
                "planted": planted,
                "runs": runs,
                "median_s": round(seconds, 2),
                "rows_per_s": round(rows / seconds),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "load_at_end": [round(x, 2) for x in psutil.getloadavg()],
            }
        )
        path.unlink(missing_ok=True)
        env.work_dir.joinpath(f"import_{rows}.rejected.csv").unlink(missing_ok=True)
    return out


def _import_once(env: BenchEnv, campaign: str, path: Path) -> dict[str, Any]:
    rejects = path.with_suffix(".rejected.csv")
    command = [
        sys.executable,
        "-m",
        "dialer",
        "customers",
        "import",
        campaign,
        str(path),
        "--partial",
        "--account",
        "bench",
        "--rejects",
        str(rejects),
    ]
    child_env = os.environ | {
        "DIALER_DATABASE_URL": env.database_url,
        "DIALER_REDIS_URL": env.redis_url,
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    with psycopg.connect(**env.conninfo) as conn:
        stored = conn.execute("SELECT count(*) FROM enrollments").fetchone()
    rejected_lines = _count_lines(rejects) - 1 if rejects.exists() else 0
    return {
        "exit": proc.returncode,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "enrolled": stored[0] if stored else None,
        "rejected_rows_file": rejected_lines,
        "summary": output.strip().splitlines()[0][:300] if output.strip() else "",
    }


def _count_lines(path: Path) -> int:
    with path.open(newline="") as stream:
        return sum(1 for _ in csv.reader(stream))


# ---------------------------------------------------------------------------- start


def run_start(env: BenchEnv, levels: tuple[int, ...], reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"levels": []}
    for n in levels:
        runs = []
        for rep in range(reps):
            truncate_all(env.database_url)
            zone = fixtures.noon_zone()
            load0 = time.perf_counter()
            campaign_id = fixtures.create(env.database_url, f"start-{n}-{rep}", zone, n)
            with psycopg.connect(**env.conninfo, autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE) customers, enrollments")
            load_s = time.perf_counter() - load0
            runs.append(_start_once(env, campaign_id) | {"load_s": round(load_s, 1)})
        seconds = statistics.median(r["seconds"] for r in runs)
        out["levels"].append(
            {
                "enrollments": n,
                "runs": runs,
                "median_s": round(seconds, 2),
                "attempts_per_s": round(n / seconds),
                "load_at_end": [round(x, 2) for x in psutil.getloadavg()],
            }
        )
    truncate_all(env.database_url)
    return out


def _start_once(env: BenchEnv, campaign_id: uuid.UUID) -> dict[str, Any]:
    now = datetime.now(UTC)
    fixtures.start(env.database_url, campaign_id, now)
    payload = {"campaign_id": str(campaign_id)}
    rss0 = _maxrss_mb()
    started = time.perf_counter()
    created = ticks.materialize(
        lambda: transaction(env.database_url), CAMPAIGN_STARTED, campaign_id, now, payload
    )
    seconds = time.perf_counter() - started
    with psycopg.connect(**env.conninfo) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT enrollment_id) FROM call_attempts"
            " WHERE campaign_id = %s",
            (campaign_id,),
        ).fetchone()
    attempts, distinct = row if row else (0, 0)
    return {
        "seconds": round(seconds, 2),
        "created": created,
        "attempts": attempts,
        "duplicates": attempts - distinct,
        "rss_growth_mb": round(_maxrss_mb() - rss0, 1),
    }


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------- search

SEARCH_TERMS = {
    "surname (1/8 of customers)": "bianchi",
    "phone fragment (1 customer)": "0600001234",
    "customer_id (1 customer)": "srch-000077777",
    "conv_id (1 attempt)": "conv-0000123457",
    "no match": "zzqxv",
}


def run_search(env: BenchEnv, attempts: int, reps: int) -> dict[str, Any]:
    truncate_all(env.database_url)
    customers = max(attempts // 4, 1)
    load_s, account_id = _load_calls(env, customers)
    out: dict[str, Any] = {
        "attempts": customers * 4,
        "customers": customers,
        "load_s": round(load_s, 1),
    }
    present = _present_indexes(env)
    out["trigram_indexes"] = present
    variants = [("with index", True), ("without index", False)] if present else []
    variants = variants or [("no trigram index (pg_trgm absent or pre-0012)", False)]
    out["variants"] = {}
    for label, keep in variants:
        if not keep:
            _drop_indexes(env, present)
        out["variants"][label] = _measure_terms(env, account_id, reps)
    return out


def _measure_terms(env: BenchEnv, account_id: uuid.UUID, reps: int) -> dict[str, Any]:
    found: dict[str, Any] = {}
    engine = engine_for(env.database_url)
    for label, term in SEARCH_TERMS.items():
        query = build_query(q=term, limit=10)
        times: list[float] = []
        totals: set[int] = set()
        for _ in range(reps + 2):
            with transaction(env.database_url) as session:
                t0 = time.perf_counter()
                page = list_calls(session, account_id, query)
                times.append((time.perf_counter() - t0) * 1000)
                totals.add(page.total)
        times = sorted(times[2:])  # two warm-ups
        found[label] = {
            "q": term,
            "total": sorted(totals),
            "p50_ms": round(statistics.median(times), 2),
            "p99_ms": round(_p99(times), 2),
            "explain": _explain_page(engine, account_id, query),
        }
    return found


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def _explain_page(engine: Any, account_id: uuid.UUID, query: Any) -> str:
    """The page statement of list_calls, captured as it runs, then EXPLAINed."""
    captured: list[tuple[str, Any]] = []

    def grab(conn: Connection, _c: Any, statement: str, params: Any, *_a: Any) -> None:
        if statement.lstrip().startswith("SELECT call_attempts.") and not captured:
            captured.append((statement, params))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with transaction(engine.url.render_as_string(hide_password=False)) as session:
            list_calls(session, account_id, query)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    if not captured:
        return "(page statement not captured)"
    statement, params = captured[0]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
    return "\n".join(row[0] for row in rows)


def _present_indexes(env: BenchEnv) -> list[str]:
    with psycopg.connect(**env.conninfo) as conn:
        rows = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", (list(TRIGRAM_INDEXES),)
        ).fetchall()
    return sorted(r[0] for r in rows)


def _drop_indexes(env: BenchEnv, names: list[str]) -> None:
    with psycopg.connect(**env.conninfo, autocommit=True) as conn:
        for name in names:
            conn.execute(f"DROP INDEX IF EXISTS {name}")
        conn.execute("ANALYZE customers, call_attempts")


def _load_calls(env: BenchEnv, customers: int) -> tuple[float, uuid.UUID]:
    """``customers`` customers, one enrollment each, attempts 1-3 done and 4 pending."""
    zone = fixtures.noon_zone()
    campaign_id = fixtures.create(env.database_url, "search", zone, 0)
    with transaction(env.database_url) as session:
        account_id = session.execute(
            text("SELECT account_id FROM campaigns WHERE id = :c"), {"c": campaign_id}
        ).scalar_one()
    started = time.perf_counter()
    now = datetime.now(UTC)
    params = {
        "n": customers,
        "account": account_id,
        "campaign": campaign_id,
        "zone": zone,
        "now": now,
        "names": list(FIRST_NAMES),
        "surnames": list(SURNAMES),
    }
    with psycopg.connect(**env.conninfo) as conn:
        conn.execute("SET LOCAL synchronous_commit = off")
        conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
        conn.execute(
            """
            CREATE TEMP TABLE gen ON COMMIT DROP AS
            SELECT g,
                   (lpad(to_hex(g), 12, '0') || '7000c' || lpad(to_hex(g), 15, '0'))::uuid AS cust,
                   (lpad(to_hex(g), 12, '0') || '7000e' || lpad(to_hex(g), 15, '0'))::uuid AS enr
            FROM generate_series(1, %(n)s::int) AS g
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO customers (id, account_id, customer_id, name, surname, phone, timezone)
            SELECT cust, %(account)s, 'srch-' || lpad(g::text, 9, '0'),
                   (%(names)s::text[])[1 + g %% 9], (%(surnames)s::text[])[1 + g %% 8],
                   '+3906' || lpad(g::text, 8, '0'), %(zone)s
            FROM gen
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO enrollments (id, campaign_id, customer_id, state)
            SELECT enr, %(campaign)s, cust, 'active' FROM gen
            """,
            params,
        )
        conn.execute(
            """
            INSERT INTO call_attempts (id, enrollment_id, campaign_id, customer_id, attempt_no,
                                       status, outcome, idempotency_key, conv_id, scheduled_at,
                                       dispatched_at, finished_at, created_at, updated_at)
            SELECT (lpad(to_hex(g * 4 + k), 12, '0') || '7000a'
                    || lpad(to_hex(g * 4 + k), 15, '0'))::uuid,
                   enr, %(campaign)s, cust, k,
                   CASE WHEN k < 4 THEN 'completed' ELSE 'pending' END,
                   CASE WHEN k < 4 THEN 'no_answer' END,
                   'att:' || enr || ':' || k,
                   CASE WHEN k < 4 THEN 'conv-' || lpad((g * 4 + k)::text, 10, '0') END,
                   at, CASE WHEN k < 4 THEN at END, CASE WHEN k < 4 THEN at END, at, at
            FROM (SELECT gen.*, k,
                         %(now)s::timestamptz - (g * 4 + k) * interval '1 second' AS at
                  FROM gen CROSS JOIN generate_series(1, 4) AS k) AS rows
            """,
            params,
        )
        conn.commit()
    with psycopg.connect(**env.conninfo, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) customers, enrollments, call_attempts")
    return time.perf_counter() - started, account_id
