"""Reconcile a call whose result never arrived: ask the provider (GUIDE rule 7)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.dependencies import UnitOfWork
from dialer.policies.status import is_terminal, map_provider_status
from dialer.policies.vocabulary import (
    AttemptStatus,
    Outcome,
    ProviderCallStatus,
    ProviderEventStatus,
)
from dialer.providers.base import (
    CallRecord,
    PermanentProviderError,
    TransientProviderError,
    VoiceProvider,
)
from dialer.providers.voice_fleet import fleet_of
from dialer.services.results import apply_call_record, finish_call
from models import CallAttempt
from models import ProviderEvent as InboxRow


def reconcile_call(
    uow: UnitOfWork, provider: VoiceProvider, attempt_id: uuid.UUID, now: datetime
) -> str:
    with uow() as session:
        conv_id, sent_to = session.execute(
            select(CallAttempt.conv_id, CallAttempt.provider).where(CallAttempt.id == attempt_id)
        ).one()
    if conv_id is None:
        return _give_up(uow, attempt_id, now, "no provider call id was recorded")
    try:
        # The provider that placed it: its call id means nothing to another one.
        provider = fleet_of(provider).adapter(sent_to)
        record = provider.get_call(conv_id)
    except TransientProviderError:
        return "retry_later"
    except PermanentProviderError as exc:
        return _give_up(uow, attempt_id, now, f"provider has no record of call {conv_id}: {exc}")
    if not is_terminal(map_provider_status(ProviderCallStatus(record.status))[0]):
        return "still_running"
    with uow() as session:
        audit_record(session, provider.name, record)
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        apply_call_record(session, attempt, record, now)
    return "reconciled"


def _give_up(uow: UnitOfWork, attempt_id: uuid.UUID, now: datetime, reason: str) -> str:
    with uow() as session:
        attempt = session.scalars(
            select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
        ).one()
        if attempt.status != AttemptStatus.IN_PROGRESS:
            return "already_final"
        attempt.status, attempt.outcome, attempt.finished_at = (
            AttemptStatus.FAILED,
            Outcome.FAILED,
            now,
        )
        attempt.last_error = f"reconciliation: {reason}"
        finish_call(session, attempt, now, permanent_failure=False)
    return AttemptStatus.FAILED


def audit_record(session: Session, provider: str, record: CallRecord) -> None:
    """Keep what the provider told us in the inbox, like any other event."""
    session.execute(
        insert(InboxRow)
        .values(
            provider=provider,
            event_id=f"reconcile:{record.id}:{record.status}",
            kind="call.reconciled",
            status=ProviderEventStatus.APPLIED,
            payload=_json_safe(asdict(record)),
        )
        .on_conflict_do_nothing()
    )


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
