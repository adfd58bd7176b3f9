"""Settle a sent message whose delivery status never came (issue 14, 10d).

Status webhooks can be lost (the ingress was down past the provider's re-delivery,
or a provider re-sends less than Meta's 7 days). After the deadline the reaper asks
the adapter where it can (``MessageLookup``: a Twilio-style message fetch, the
simulator); the WhatsApp Cloud API has no lookup, so there the message is marked
``unknown`` with the reason. ``unknown`` ranks with ``sent``: a status that arrives
later still moves it on. Neither state holds a campaign open (only pending and
queued outbound messages are owed).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from dialer.dependencies import UnitOfWork
from dialer.policies.vocabulary import MessageStatus, ProviderEventStatus
from dialer.providers.base import (
    MessageLookup,
    MessageProvider,
    MessageStatusUpdate,
    PermanentProviderError,
    TransientProviderError,
)
from dialer.services.messages import apply_message_status
from models import Message
from models import ProviderEvent as InboxRow

NO_LOOKUP = "no delivery status within the deadline and the provider has no message lookup"


def reconcile_message(
    uow: UnitOfWork, provider: MessageProvider, message_id: uuid.UUID, now: datetime
) -> str:
    """One unconfirmed message: `reconciled` (the provider told), `unknown`, or `retry_later`."""
    with uow() as session:
        row = session.execute(
            select(Message.channel, Message.provider_message_id).where(Message.id == message_id)
        ).one()
        if row.provider_message_id and _status_waits_in_inbox(session, row.provider_message_id):
            return "status_waiting_in_inbox"  # stored, not applied yet: the backlog, not a loss
    reason = NO_LOOKUP
    if isinstance(provider, MessageLookup) and row.provider_message_id:
        try:
            found = provider.message_status(row.channel, row.provider_message_id)
        except TransientProviderError:
            return "retry_later"
        except PermanentProviderError as exc:
            found, reason = None, f"the provider has no record of the message: {exc}"
        if found is not None and found.status != MessageStatus.SENT:
            return _apply(uow, found, now)
        if found is not None:
            reason = "the provider still reports it sent after the deadline"
    return _mark_unknown(uow, message_id, reason)


def _status_waits_in_inbox(session: Session, provider_message_id: str) -> bool:
    """A status of this message is in the inbox, not yet applied (ids are `{wamid}:{status}`)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    InboxRow.status == ProviderEventStatus.RECEIVED,
                    InboxRow.event_id.startswith(f"{provider_message_id}:", autoescape=True),
                )
            )
        )
    )


def _apply(uow: UnitOfWork, found: MessageStatusUpdate, now: datetime) -> str:
    with uow() as session:
        apply_message_status(session, found, now)
    return "reconciled"


def _mark_unknown(uow: UnitOfWork, message_id: uuid.UUID, reason: str) -> str:
    with uow() as session:
        message = session.get_one(Message, message_id, with_for_update=True)
        if message.status != MessageStatus.SENT:
            return "already_moved"  # a webhook landed meanwhile
        message.status, message.error = MessageStatus.UNKNOWN, f"reconciliation: {reason}"
    return MessageStatus.UNKNOWN
