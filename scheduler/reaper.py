"""Find work that stalled and hand it back: nothing stays stuck, nothing is lost.

- `queued` too long: its dispatch task never ran (lost after commit): send again.
- `dispatching` too long: the worker died mid-request: send again, same idempotency key.
- `in_progress` past the longest call: the webhook never came: ask the provider.
- `uncertain` (a placement's answer was lost) due for a look: find it by our metadata.
  Such an attempt is never sent again: it is not `queued` nor `dispatching`.
- a message `queued` too long: its send task died after the claim: owed again.
- a WhatsApp message `sent` with no status past its deadline: ask, or mark unknown.
Thresholds are operational (real seconds), converted to the clock's time.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from dialer.policies.vocabulary import AttemptStatus, Channel, Direction, MessageStatus
from models import CallAttempt, Message

REAP_BATCH = 500


def stale(
    session: Session, status: AttemptStatus, column: str, older_than: datetime
) -> list[uuid.UUID]:
    col = getattr(CallAttempt, column)
    return list(
        session.scalars(
            select(CallAttempt.id)
            .where(CallAttempt.status == status, col < older_than)
            .order_by(col)
            .limit(REAP_BATCH)
        )
    )


def stale_queued(session: Session, now: datetime, timeout: timedelta) -> list[uuid.UUID]:
    return stale(session, AttemptStatus.QUEUED, "queued_at", now - timeout)


def mark_requeued(session: Session, ids: list[uuid.UUID], now: datetime) -> None:
    """Restart the clock of attempts sent again: the next re-send only after another
    timeout. Without it every reap (5 s) re-sent the same claims while a worker was
    down: 100 attempts 5 times over in one worker-kill run, a backlog to wade through."""
    if ids:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.id.in_(ids), CallAttempt.status == AttemptStatus.QUEUED)
            .values(queued_at=now)
            .execution_options(synchronize_session=False)
        )


def stale_dispatching(session: Session, now: datetime, timeout: timedelta) -> list[uuid.UUID]:
    return stale(session, AttemptStatus.DISPATCHING, "dispatched_at", now - timeout)


def overdue_calls(
    session: Session, now: datetime, max_call: timedelta
) -> list[tuple[uuid.UUID, str | None]]:
    rows = session.execute(
        select(CallAttempt.id, CallAttempt.conv_id)
        .where(
            CallAttempt.status == AttemptStatus.IN_PROGRESS,
            CallAttempt.dispatched_at < now - max_call,
        )
        .limit(REAP_BATCH)
    ).all()
    return [(r[0], r[1]) for r in rows]


def uncertain_due(session: Session, now: datetime) -> list[uuid.UUID]:
    """Held placements whose next lookup is due (ix_call_attempts_uncertain)."""
    return list(
        session.scalars(
            select(CallAttempt.id)
            .where(
                CallAttempt.status == AttemptStatus.UNCERTAIN,
                or_(CallAttempt.next_check_at <= now, CallAttempt.next_check_at.is_(None)),
            )
            .order_by(CallAttempt.next_check_at)
            .limit(REAP_BATCH)
        )
    )


def stale_messages(session: Session, now: datetime, timeout: timedelta) -> list[uuid.UUID]:
    """Messages claimed by a send task (`queued`) that never finished the send."""
    return list(
        session.scalars(
            select(Message.id)
            .where(
                Message.status == MessageStatus.QUEUED,
                # No claim time: claimed before the column existed, so long ago.
                or_(Message.queued_at < now - timeout, Message.queued_at.is_(None)),
            )
            .order_by(Message.queued_at)
            .limit(REAP_BATCH)
        )
    )


def queued_count(session: Session) -> int:
    """Attempts claimed and not yet taken by a dispatch, fleet-wide (ix_call_attempts_queued_at)."""
    q = select(func.count()).where(CallAttempt.status == AttemptStatus.QUEUED)
    return session.scalar(q) or 0


def unconfirmed_messages(session: Session, now: datetime, timeout: timedelta) -> list[uuid.UUID]:
    """Outbound WhatsApp messages still `sent` (no delivery status) past the deadline.

    Email is left out: SMTP gives no delivery status, so `sent` is where it ends.
    """
    return list(
        session.scalars(
            select(Message.id)
            .where(
                Message.status == MessageStatus.SENT,
                Message.direction == Direction.OUTBOUND,
                Message.channel == Channel.WHATSAPP,
                Message.sent_at < now - timeout,
            )
            .order_by(Message.sent_at)
            .limit(REAP_BATCH)
        )
    )
