"""Issue 15's other big-N paths at scale-shape: streamed import, restartable start, q search.

Sizes are small enough for the suite; what is checked is structural (the reader is
never more than a batch ahead of the writes, the kept problems stay capped, a killed
materialisation leaves nothing and the rerun makes each first attempt once, the
trigram indexes change no answer), not timing: the figures are in ``python -m bench``.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from dialer.cli.render import write_rejects
from dialer.customers_csv import DUPLICATE, KEPT_PROBLEMS, parse_customers
from dialer.policies.vocabulary import EnrollmentState
from dialer.services import attempts, imports
from dialer.services.calls_query import build_query, list_calls
from dialer.services.outbox import CAMPAIGN_STARTED, OUTBOX_ID_KEY
from models import CallAttempt, Campaign, Enrollment, OutboxEvent
from models.optional_indexes import TRIGRAM_INDEXES
from models.session import engine_for, transaction
from scheduler import ticks
from tests.integration.pipeline_support import BASE_SPEC, setup_campaign, start, uow_for

NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
ROWS = 20_000
BAD_EMAIL_EVERY = 13  # 1,538 bad rows: more than KEPT_PROBLEMS, so the cap shows
REPEAT_LINE = 19_001  # repeats the customer_id of the row on line 11 (another batch)


def _phone(n: int) -> str:
    return f"+3906{n * 10 + 1:09d}"


def _big_csv() -> Iterator[str]:
    yield "customer_id,name,email,phone,plan\n"
    for n in range(1, ROWS + 1):
        line = n + 1
        customer_id = "c000010" if line == REPEAT_LINE else f"c{n:06d}"
        email = "=not-an-email" if n % BAD_EMAIL_EVERY == 0 else f"c{n}@example.com"
        yield f"{customer_id},Name{n},{email},{_phone(n)},gold\n"


class _CountingLines:
    """The file's lines, counting how many the import has pulled so far."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.pulled = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.pulled += 1
            yield line


def test_a_streamed_import_reads_a_batch_ahead_at_most_and_loses_no_row(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id = setup_campaign(clean_db, csv_text="customer_id,phone\n")
    lines = _CountingLines(_big_csv())
    ahead: list[int] = []  # lines pulled when each batch is written
    real_batch = imports._import_batch

    def record_then_write(session: Session, *args: Any) -> None:
        ahead.append(lines.pulled)
        real_batch(session, *args)

    monkeypatch.setattr(imports, "_import_batch", record_then_write)
    with transaction(clean_db) as session:
        campaign = session.get_one(Campaign, campaign_id)
        rows = parse_customers(lines, dedupe=False)
        report = imports.import_customers(session, campaign, rows, partial=True)
        write_rejects(tmp_path / "rejects.csv", report)

    # Structural bound: when batch k is written, at most k batches (+ the bad rows among
    # them, + the header) were read; the reader never ran through the file first.
    bad_per_batch = imports.BATCH_SIZE // (BAD_EMAIL_EVERY - 1) + 2
    assert len(ahead) >= ROWS // imports.BATCH_SIZE
    for k, pulled in enumerate(ahead[: len(ahead) - 1], start=1):
        assert pulled <= k * (imports.BATCH_SIZE + bad_per_batch) + 1
    bad = ROWS // BAD_EMAIL_EVERY
    assert report.rows_read == ROWS
    assert report.rejected_count == bad + 1  # and the repeat
    assert len(report.rejected) == KEPT_PROBLEMS  # the rest are in the spool only
    assert report.enrolled == ROWS - bad - 1
    with transaction(clean_db) as session:
        stored = session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.campaign_id == campaign_id)
        )
    assert stored == report.enrolled

    with (tmp_path / "rejects.csv").open(newline="") as stream:
        written = list(csv.DictReader(stream))
    assert len(written) == report.rejected_count  # every rejected row, not the kept ones
    assert stored + len(written) == ROWS  # no row lost
    repeat = next(row for row in written if row["field"] == DUPLICATE)
    assert (repeat["line"], repeat["reason"]) == (str(REPEAT_LINE), "customer_id repeats line 11")
    assert written[0]["email"] == "'=not-an-email"  # spreadsheet-safe


def test_a_repeat_is_found_across_batches_and_within_one(session: Session) -> None:
    campaign = _draft_campaign(session)
    text_csv = "customer_id,phone\na,+390612345601\nb,+390612345602\nc,+390612345601\na,\n"
    report = imports.import_customers(
        session, campaign, parse_customers(io.StringIO(text_csv), dedupe=False), partial=True
    )
    reasons = [(p.line, p.reason) for p in report.rejected]
    assert reasons == [(4, "phone +390612345601 repeats line 2"), (5, "customer_id repeats line 2")]
    assert report.enrolled == 2


def _draft_campaign(session: Session) -> Campaign:
    from dialer.policies.window import LegalBound
    from dialer.schemas import CampaignSpec
    from dialer.services.accounts import get_or_create_account
    from dialer.services.campaigns import create_campaign

    account = get_or_create_account(session, "big")
    spec = CampaignSpec.model_validate(BASE_SPEC)
    return create_campaign(session, account, spec, LegalBound())


# --------------------------------------------------------------------------- start

ENROLLED = 537  # not a multiple of the window: the last, short window counts too


def _started_campaign(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[uuid.UUID, dict[str, Any]]:
    monkeypatch.setattr(attempts, "MATERIALIZE_BATCH", 50)
    body = "".join(f"c{n:04d},{_phone(n)}\n" for n in range(ENROLLED))
    campaign_id = setup_campaign(url, csv_text="customer_id,phone\n" + body)
    start(url, campaign_id, NOW)
    with transaction(url) as session:
        event_row = session.scalars(select(OutboxEvent)).one()
        payload = {**event_row.payload, OUTBOX_ID_KEY: event_row.id}
    return campaign_id, payload


def _first_attempts(url: str, campaign_id: uuid.UUID) -> tuple[int, int]:
    with transaction(url) as session:
        row = session.execute(
            select(func.count(), func.count(func.distinct(CallAttempt.enrollment_id))).where(
                CallAttempt.campaign_id == campaign_id
            )
        ).one()
    return int(row[0]), int(row[1])


def test_a_worker_killed_mid_materialisation_leaves_nothing_and_the_rerun_makes_each_once(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id, payload = _started_campaign(clean_db, monkeypatch)
    real_batch = attempts._materialize_batch
    calls = {"n": 0}

    def batch_then_die(session: Session, *args: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 4:  # three windows written: the backend is killed, as by OOM
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            _terminate(clean_db, int(pid))
        return real_batch(session, *args)

    monkeypatch.setattr(attempts, "_materialize_batch", batch_then_die)
    with pytest.raises(OperationalError):
        ticks.materialize(uow_for(clean_db), CAMPAIGN_STARTED, campaign_id, NOW, payload)
    assert _first_attempts(clean_db, campaign_id) == (0, 0)
    with transaction(clean_db) as session:  # unhandled: the relay publishes it again
        assert session.scalars(select(OutboxEvent.handled_at)).one() is None

    monkeypatch.setattr(attempts, "_materialize_batch", real_batch)
    created = ticks.materialize(uow_for(clean_db), CAMPAIGN_STARTED, campaign_id, NOW, payload)
    assert created == ENROLLED
    assert _first_attempts(clean_db, campaign_id) == (ENROLLED, ENROLLED)
    again = ticks.materialize(uow_for(clean_db), CAMPAIGN_STARTED, campaign_id, NOW, payload)
    assert again == 0
    assert _first_attempts(clean_db, campaign_id) == (ENROLLED, ENROLLED)


def test_materialising_again_adds_only_the_newcomers_and_skips_closed_enrollments(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id, payload = _started_campaign(clean_db, monkeypatch)
    ticks.materialize(uow_for(clean_db), CAMPAIGN_STARTED, campaign_id, NOW, payload)
    with transaction(clean_db) as session:
        campaign = session.get_one(Campaign, campaign_id)
        more = "".join(f"n{n:04d},{_phone(5000 + n)}\n" for n in range(120))
        rows = parse_customers(io.StringIO("customer_id,phone\n" + more))
        imports.import_customers(session, campaign, rows, partial=False)
        closed = session.scalars(
            select(Enrollment.id)
            .join(CallAttempt, CallAttempt.enrollment_id == Enrollment.id, isouter=True)
            .where(Enrollment.campaign_id == campaign_id, CallAttempt.id.is_(None))
            .limit(20)
        ).all()
        for enrollment_id in closed:
            enrollment = session.get_one(Enrollment, enrollment_id)
            enrollment.state = EnrollmentState.OPTED_OUT
            enrollment.close_reason = "customer opted out"
            enrollment.closed_at = NOW
    created = ticks.materialize(uow_for(clean_db), CAMPAIGN_STARTED, campaign_id, NOW, {})
    assert created == 100
    assert _first_attempts(clean_db, campaign_id) == (ENROLLED + 100, ENROLLED + 100)


def _terminate(url: str, pid: int) -> None:
    info = make_url(url)
    with psycopg.connect(
        host=info.host, port=info.port, user=info.username, dbname=info.database, autocommit=True
    ) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


# --------------------------------------------------------------------------- q search

TERMS = ("ross", "BIANCHI", "0600000", "c00004", "conv-00000", "zzq", "a", "50%", "o_r")


def _search_data(url: str) -> uuid.UUID:
    names = ("Rossi", "Bianchi", "Rossetti", "Verdi", "O_Reilly", "50% Off")
    body = "".join(f"c{n:05d},Ann{n},{names[n % len(names)]},{_phone(n)}\n" for n in range(300))
    campaign_id = setup_campaign(url, csv_text="customer_id,name,surname,phone\n" + body)
    with transaction(url) as session:
        session.execute(
            text(
                "INSERT INTO call_attempts (id, enrollment_id, campaign_id, customer_id,"
                " attempt_no, status, outcome, idempotency_key, conv_id, scheduled_at,"
                " finished_at)"
                " SELECT gen_random_uuid(), e.id, e.campaign_id, e.customer_id, k, 'completed',"
                " 'no_answer', 'att:' || e.id || ':' || k,"
                " 'conv-' || lpad((row_number() OVER ())::text, 6, '0'), now(), now()"
                " FROM enrollments e CROSS JOIN generate_series(1, 3) AS k"
            )
        )
        return session.scalars(select(Campaign.account_id).where(Campaign.id == campaign_id)).one()


def _answers(url: str, account_id: uuid.UUID) -> dict[str, tuple[int, list[uuid.UUID]]]:
    found = {}
    with transaction(url) as session:
        for term in TERMS:
            page = list_calls(session, account_id, build_query(q=term, limit=200))
            found[term] = (page.total, [row.attempt.id for row in page.rows])
    return found


def test_q_search_answers_the_same_with_and_without_the_trigram_indexes(clean_db: str) -> None:
    account_id = _search_data(clean_db)
    with_index = _answers(clean_db, account_id)
    assert with_index["ross"][0] == 300 // 6 * 2 * 3  # Rossi and Rossetti, 3 attempts each
    assert with_index["50%"][0] == 50 * 3  # % is a character, not a wildcard
    assert with_index["zzq"][0] == 0
    engine = engine_for(clean_db)
    try:
        with engine.begin() as conn:
            for name, _table, _column in TRIGRAM_INDEXES:
                conn.execute(text(f"DROP INDEX {name}"))
        assert _answers(clean_db, account_id) == with_index
    finally:
        with engine.begin() as conn:
            for name, table, column in TRIGRAM_INDEXES:
                conn.execute(
                    text(f"CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)")
                )


def test_the_q_search_can_be_served_by_the_trigram_indexes(clean_db: str) -> None:
    account_id = _search_data(clean_db)
    captured: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, params: Any, *_a: Any) -> None:
        if statement.lstrip().startswith("SELECT call_attempts."):
            captured.append((statement, params))

    engine = engine_for(clean_db)
    event.listen(engine, "before_cursor_execute", grab)
    try:
        with transaction(clean_db) as session:
            list_calls(session, account_id, build_query(q="bianchi"))
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    statement, params = captured[0]
    with engine.begin() as conn:  # a tiny table: make plain scans look dear to the planner
        conn.execute(text("ANALYZE customers, call_attempts"))
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        conn.execute(text("SET LOCAL enable_indexscan = off"))
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params).all()
        )
    assert "ix_call_attempts_conv_id_trgm" in plan, plan
    # The customers branch: its OR over four columns is a BitmapOr of their four indexes
    # (at 300 rows the account's own index wins the whole query; the bench shows 1M).
    customers_only = (
        "SELECT id FROM customers WHERE name ILIKE '%bianchi%' OR surname ILIKE '%bianchi%'"
        " OR phone ILIKE '%bianchi%' OR customer_id ILIKE '%bianchi%'"
    )
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(row[0] for row in conn.execute(text("EXPLAIN " + customers_only)))
    assert "BitmapOr" in plan, plan
    for name, table, _column in TRIGRAM_INDEXES:
        if table == "customers":
            assert name in plan, plan
