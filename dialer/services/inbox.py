"""The inbox path every provider event takes: parse, store (deduplicated), apply.

Storing and applying are separate transactions: once stored, an event is never
lost; if applying fails it stays `received` and the reaper applies it again.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import func, null, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer import metrics
from dialer.dependencies import UnitOfWork
from dialer.logging import get_logger
from dialer.policies.vocabulary import ProviderEventStatus
from dialer.providers.base import ProviderEvent
from dialer.services import batch_reads
from dialer.services.messages import apply_inbound, apply_message_status
from dialer.services.results import ResultBatch, store_event, store_events
from models import ProviderEvent as InboxRow
from models.sql import among

log = get_logger("dialer.inbox")
EVENT_ID_MAX_CHARS = 255  # provider_events.event_id
REJECTED_ID_KEPT_CHARS = 100  # of a rejected payload's id, in its row's key
Parser = Callable[[Mapping[str, Any]], ProviderEvent]
ParserFor = Callable[[str], Parser | None]  # an inbox source -> its parser, if it has one


class Intake(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True)
class IntakeResult:
    intake: Intake
    inbox_id: uuid.UUID | None = None
    error: str | None = None


def take_in(
    session: Session, provider: str, parse: Parser, payload: Mapping[str, Any]
) -> IntakeResult:
    """Store one raw event. A malformed one is kept as `rejected` for inspection."""
    try:
        event = _parsed(parse, payload)
    except ValueError as exc:
        _keep_rejected(session, provider, payload, str(exc))
        metrics.webhook_events(Intake.REJECTED.value)
        return IntakeResult(Intake.REJECTED, error=str(exc))
    inbox_id = store_event(session, event, dict(payload))
    result = IntakeResult(Intake.STORED, inbox_id) if inbox_id else IntakeResult(Intake.DUPLICATE)
    metrics.webhook_events(result.intake.value)
    return result


def take_in_many(
    session: Session, provider: str, parse: Parser, payloads: Sequence[Mapping[str, Any]]
) -> tuple[dict[uuid.UUID, ProviderEvent], Counter[str]]:
    """Store many raw events with one insert; returns the new ones by inbox id, in payload order."""
    counts: Counter[str] = Counter()
    parsed: list[tuple[ProviderEvent, dict[str, Any]]] = []
    for payload in payloads:
        try:
            parsed.append((_parsed(parse, payload), dict(payload)))
        except ValueError as exc:
            _keep_rejected(session, provider, payload, str(exc))
            counts[Intake.REJECTED.value] += 1
    new = store_events(session, parsed)
    # pop: the same event twice in one batch is stored once and counted a duplicate
    stored = {new.pop(event.event_id): event for event, _ in parsed if event.event_id in new}
    counts[Intake.DUPLICATE.value] += len(parsed) - len(stored)
    for result, count in (*counts.items(), (Intake.STORED.value, len(stored))):
        metrics.webhook_events(result, count)
    return stored, counts


def _parsed(parse: Parser, payload: Mapping[str, Any]) -> ProviderEvent:
    """The parsed event; ValueError for one the inbox cannot key (its id is too long)."""
    event = parse(payload)
    if len(event.event_id) > EVENT_ID_MAX_CHARS:
        raise ValueError(f"field 'event_id' is longer than {EVENT_ID_MAX_CHARS} characters")
    return event


def _keep_rejected(session: Session, provider: str, payload: Mapping[str, Any], error: str) -> None:
    # The payload's own id, shortened: the row's key must fit whatever the sender wrote.
    raw_id = str(payload.get("event_id") or uuid.uuid4())[:REJECTED_ID_KEPT_CHARS]
    session.execute(
        insert(InboxRow)
        .values(
            provider=provider,
            event_id=f"rejected:{raw_id}:{uuid.uuid4()}",
            kind=ProviderEventStatus.REJECTED,
            status=ProviderEventStatus.REJECTED,
            payload=dict(payload),
            error=error.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode(),
        )
        .on_conflict_do_nothing()
    )


def apply_stored(
    session: Session,
    inbox_id: uuid.UUID,
    parse: Parser,
    now: datetime,
    parser_for: ParserFor | None = None,
) -> str:
    """Apply one stored event exactly once (the row lock and its status make it so).

    ``parser_for``: a row's parser by the provider it was stored under (a deployment
    with several voice providers); ``parse`` reads the rows it has none for.
    """
    applied = +apply_stored_many(session, [inbox_id], parse, now, parser_for=parser_for)
    return next(iter(applied), "not_pending")


class _Stored(NamedTuple):
    id: uuid.UUID
    payload: dict[str, Any] | None  # not read when the caller has the parsed event
    attempt_id: uuid.UUID | None
    provider: str


def apply_stored_many(
    session: Session,
    inbox_ids: Sequence[uuid.UUID],
    parse: Parser,
    now: datetime,
    parsed: Mapping[uuid.UUID, ProviderEvent] | None = None,
    parser_for: ParserFor | None = None,
) -> Counter[str]:
    """Apply stored events in the given order, in this transaction; counts per outcome.

    Consecutive call events are applied as one ResultBatch (set-based reads and
    writes); a message event ends the run, so it sees every earlier call's facts.
    Rows another transaction holds are skipped: that one is applying them.
    `parsed` holds the events the caller has just stored and parsed: their payloads
    are then neither read back nor parsed a second time.
    """
    outcomes: dict[uuid.UUID, str] = {}
    run: list[tuple[_Stored, ProviderEvent]] = []
    for row in _lock_received(session, inbox_ids, with_payload=parsed is None):
        if parsed is not None:
            event = parsed[row.id]
        else:
            own = parser_for(row.provider) if parser_for is not None else None
            event = (own or parse)(row.payload or {})
        if event.call is not None:
            run.append((row, event))
            continue
        outcomes |= _apply_call_run(session, run, now)
        run = []
        outcomes[row.id] = _apply_message_event(session, event, now)
    outcomes |= _apply_call_run(session, run, now)
    _mark_handled(session, outcomes, now)
    counts = Counter(outcomes.values())
    for result, count in counts.items():
        metrics.webhook_events(result, count)
    return counts


def _lock_received(
    session: Session, inbox_ids: Sequence[uuid.UUID], *, with_payload: bool
) -> list[_Stored]:
    payload = InboxRow.payload if with_payload else null()
    found = session.execute(
        select(InboxRow.id, payload, InboxRow.attempt_id, InboxRow.provider)
        .where(among(InboxRow.id, inbox_ids), InboxRow.status == ProviderEventStatus.RECEIVED)
        .with_for_update(skip_locked=True)
    )
    order = {inbox_id: index for index, inbox_id in enumerate(inbox_ids)}
    return sorted((_Stored(*row) for row in found), key=lambda row: order[row.id])


def _apply_call_run(
    session: Session, run: list[tuple[_Stored, ProviderEvent]], now: datetime
) -> dict[uuid.UUID, str]:
    if not run:
        return {}
    hints = _attempt_hints(session, run)
    batch = ResultBatch(session, now)
    attempts = batch.lock({attempt_id for attempt_id in hints.values() if attempt_id})
    outcomes: dict[uuid.UUID, str] = {}
    for row, event in run:
        attempt_id = hints[row.id]
        attempt = attempts.get(attempt_id) if attempt_id else None
        assert event.call is not None
        if attempt is None:
            outcomes[row.id] = ProviderEventStatus.IGNORED
        else:
            outcomes[row.id] = (
                ProviderEventStatus.APPLIED if batch.apply(attempt, event.call) else "unchanged"
            )
    batch.flush()
    return outcomes


def _attempt_hints(
    session: Session, run: list[tuple[_Stored, ProviderEvent]]
) -> dict[uuid.UUID, uuid.UUID | None]:
    """The attempt of each event: its own reference, else found by the provider call id."""
    unknown = {event.call.id for row, event in run if event.call and row.attempt_id is None}
    by_call = batch_reads.attempt_ids_for_calls(session, unknown)
    return {
        row.id: row.attempt_id or (by_call.get(event.call.id) if event.call else None)
        for row, event in run
    }


def _apply_message_event(session: Session, event: ProviderEvent, now: datetime) -> str:
    if event.message_status is not None:
        changed = apply_message_status(session, event.message_status, now)
        return ProviderEventStatus.APPLIED if changed else "unchanged"
    if event.inbound is not None:
        return apply_inbound(session, event.inbound, now)
    return ProviderEventStatus.IGNORED


def _mark_handled(session: Session, outcomes: dict[uuid.UUID, str], now: datetime) -> None:
    """One UPDATE per final status; the outcome's detail (unchanged...) is only counted."""
    by_status: dict[str, list[uuid.UUID]] = {}
    for inbox_id, outcome in outcomes.items():
        by_status.setdefault(
            ProviderEventStatus.IGNORED
            if outcome == ProviderEventStatus.IGNORED
            else ProviderEventStatus.APPLIED,
            [],
        ).append(inbox_id)
    for status, ids in by_status.items():
        session.execute(
            update(InboxRow)
            .where(among(InboxRow.id, ids))
            .values(status=status, processed_at=now)
            .execution_options(synchronize_session=False)  # the rows were never loaded
        )


def ingest(
    uow: UnitOfWork, provider: str, parse: Parser, payload: Mapping[str, Any], now: datetime
) -> str:
    """Store, commit, then apply: the path for one webhook."""
    counts = +ingest_many(uow, provider, parse, [payload], now)  # + drops zero counts
    return next(iter(counts))


def ingest_many(
    uow: UnitOfWork,
    provider: str,
    parse: Parser,
    payloads: Sequence[Mapping[str, Any]],
    now: datetime,
) -> Counter[str]:
    """Store every payload in one transaction, then apply the new ones in a second.

    Once stored, an event is never lost: when the apply transaction fails, each
    event is applied alone, and one that still fails stays `received` for the reaper.
    """
    with uow() as session:
        stored, counts = take_in_many(session, provider, parse, payloads)
    if not stored:
        return counts
    try:
        with uow() as session:
            counts.update(apply_stored_many(session, list(stored), parse, now, parsed=stored))
    except Exception:  # one bad event must not hold back the others
        log.warning("batch_apply_failed", events=len(stored), exc_info=True)
        counts.update(_apply_one_by_one(uow, list(stored), parse, now))
    return counts


def _apply_one_by_one(
    uow: UnitOfWork, stored: Sequence[uuid.UUID], parse: Parser, now: datetime
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for inbox_id in stored:
        try:
            with uow() as session:
                counts[apply_stored(session, inbox_id, parse, now)] += 1
        except Exception:  # left `received`; the reaper tries again
            log.exception("event_apply_failed", inbox_id=str(inbox_id))
            counts["failed"] += 1
    return counts


def unapplied_events(session: Session, older_than_seconds: float, limit: int) -> list[uuid.UUID]:
    """Stored but not applied for a while (received_at is the database's real clock)."""
    cutoff = func.now() - timedelta(seconds=older_than_seconds)
    return list(
        session.scalars(
            select(InboxRow.id)
            .where(InboxRow.status == ProviderEventStatus.RECEIVED, InboxRow.received_at < cutoff)
            .order_by(InboxRow.received_at)
            .limit(limit)
        )
    )
