"""WhatsApp and email: send what is due, record delivery, take replies (STOP opts out)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.dependencies import UnitOfWork
from dialer.policies.retry import RetryPlan, first_call_after_message
from dialer.policies.templates import render
from dialer.policies.vocabulary import (
    CampaignStatus,
    ContactEventKind,
    Direction,
    EnrollmentState,
    MessagePurpose,
    MessageStatus,
)
from dialer.policies.vocabulary import Channel as ContactChannel
from dialer.providers.base import (
    InboundMessage,
    MessageProvider,
    MessageStatusUpdate,
    PermanentProviderError,
    SendMessageRequest,
    TransientProviderError,
)
from dialer.services.attempts import cancel_open_work, schedule_call
from dialer.services.dispatch import template_values
from dialer.services.goals import close_if_goal_met
from models import Agent, Campaign, Channel, ContactEvent, Customer, Enrollment, Message
from models.sql import among

# Opt-out keywords, as carriers and WhatsApp users write them, in the languages we see most.
STOP_WORDS = frozenset(
    {
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "optout",
        "opt-out",
        "basta",
        "alto",
        "arret",
        "arrêt",
        "halt",
        "parar",
    }
)


def is_stop_request(text: str) -> bool:
    words = re.findall(r"[\w\-ê]+", text.strip().lower())
    return bool(words) and words[0] in STOP_WORDS and len(words) <= 3


def claim_due_messages(session: Session, now: datetime, limit: int) -> list[uuid.UUID]:
    """Pending outbound messages of running campaigns whose time has come -> queued."""
    ids = list(
        session.scalars(
            select(Message.id)
            .join(Campaign, Campaign.id == Message.campaign_id)
            .where(
                Message.status == MessageStatus.PENDING,
                Message.direction == Direction.OUTBOUND,
                Message.scheduled_at <= now,
                Campaign.status == CampaignStatus.RUNNING,
            )
            .order_by(Message.scheduled_at)
            .limit(limit)
            .with_for_update(of=Message, skip_locked=True)
        )
    )
    if ids:
        session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(status=MessageStatus.QUEUED, queued_at=now)
        )
    return ids


def release_claimed_messages(session: Session, ids: list[uuid.UUID], now: datetime) -> int:
    """Claimed messages whose send task died: owed again (the reaper's half for messages).

    A running or paused campaign gets them back as `pending` (the next send claims them;
    the same idempotency key never sends twice); a closed campaign cancels them, as
    closing cancels the pending ones.
    """
    if not ids:
        return 0
    still_queued = and_(among(Message.id, ids), Message.status == MessageStatus.QUEUED)
    closed = select(Campaign.id).where(Campaign.status == CampaignStatus.DONE)
    session.execute(
        update(Message)
        .where(still_queued, Message.campaign_id.in_(closed))
        .values(
            status=MessageStatus.CANCELED,
            error="campaign closed while the message was being sent",
        )
        .execution_options(synchronize_session=False)
    )
    released = session.execute(
        update(Message)
        .where(still_queued)
        .values(status=MessageStatus.PENDING, queued_at=None, error="send task lost; sent again")
        .returning(Message.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(released)


def send_message(
    uow: UnitOfWork, provider: MessageProvider, message_id: uuid.UUID, now: datetime
) -> str:
    with uow() as session:
        request = _prepare_send(session, message_id)
    if isinstance(request, str):
        return request
    try:
        result = provider.send(request)
    except TransientProviderError as exc:
        return _mark(uow, message_id, status=MessageStatus.PENDING, error=f"transient: {exc}")
    except PermanentProviderError as exc:
        return _mark(uow, message_id, status=MessageStatus.FAILED, error=f"{exc.code}: {exc}")
    with uow() as session:
        message = session.get_one(Message, message_id, with_for_update=True)
        message.status, message.provider_message_id, message.sent_at = (
            MessageStatus(result.status),
            result.provider_message_id,
            now,
        )
        if message.purpose == MessagePurpose.FIRST_CONTACT:
            _schedule_first_call(session, message, now)
    return MessageStatus.SENT


def _prepare_send(session: Session, message_id: uuid.UUID) -> SendMessageRequest | str:
    message = session.get(Message, message_id, with_for_update=True)
    if message is None or message.status != MessageStatus.QUEUED:
        return "not_queued"
    customer = session.get_one(Customer, message.customer_id)
    if customer.opted_out:
        message.status, message.error = MessageStatus.CANCELED, "customer opted out"
        return MessageStatus.CANCELED
    campaign = session.get_one(Campaign, message.campaign_id) if message.campaign_id else None
    channel = session.get(Channel, message.channel_id) if message.channel_id else None
    body = message.body or ""
    if campaign is not None:
        agent = session.get_one(Agent, campaign.agent_id)
        body = render(body, template_values(customer, campaign, agent.name))
    return SendMessageRequest(
        idempotency_key=message.idempotency_key or str(message.id),
        channel=message.channel,
        to=message.to_address or "",
        body=body,
        sender=channel.address if channel else None,
        metadata={"message_id": str(message.id)},
    )


def _mark(uow: UnitOfWork, message_id: uuid.UUID, *, status: str, error: str) -> str:
    with uow() as session:
        session.execute(
            update(Message).where(Message.id == message_id).values(status=status, error=error)
        )
    return status


def _schedule_first_call(session: Session, message: Message, now: datetime) -> None:
    """Message first: the calls start delays[0] minutes later unless a reply met the goal."""
    if message.enrollment_id is None or message.campaign_id is None:
        return
    enrollment = session.get_one(Enrollment, message.enrollment_id, with_for_update=True)
    campaign = session.get_one(Campaign, message.campaign_id)
    if enrollment.state != EnrollmentState.ACTIVE:
        return
    plan = RetryPlan(
        tuple(campaign.call_attempt_delays),
        campaign.fallback_after_attempts,
        campaign.fallback_channel,
    )
    schedule_call(session, enrollment, first_call_after_message(plan, now))


def apply_message_status(session: Session, update_: MessageStatusUpdate, now: datetime) -> bool:
    message = session.scalars(
        select(Message)
        .where(Message.provider_message_id == update_.provider_message_id)
        .with_for_update()
    ).first()
    if message is None or _rank(update_.status) <= _rank(message.status):
        return False
    message.status = MessageStatus(update_.status)
    message.error = update_.error or message.error
    if update_.status == MessageStatus.DELIVERED:
        message.delivered_at = now
        if message.channel == ContactChannel.EMAIL and message.enrollment_id:
            _record_fact(
                session,
                message,
                ContactEventKind.EMAIL_DELIVERED,
                ContactChannel.EMAIL,
                message.id,
                now,
            )
    return True


_RANKS = {
    "pending": 0,
    "queued": 1,
    "sent": 2,
    "unknown": 2,  # sent, status never came: any later status still applies
    "delivered": 3,
    "read": 4,
    "failed": 5,
    "canceled": 5,
}


def _rank(status: str) -> int:
    return _RANKS.get(status, 0)


def apply_inbound(session: Session, inbound: InboundMessage, now: datetime) -> str:
    """A reply: a contact on its channel; STOP-style replies opt the customer out."""
    ours = None
    if inbound.in_reply_to:
        ours = session.scalars(
            select(Message).where(Message.provider_message_id == inbound.in_reply_to)
        ).first()
    ours = ours or _last_sent_to(session, inbound.from_address)
    customer = _reply_customer(session, ours, inbound)
    if customer is None:
        return "unmatched"
    reply = _store_reply(session, customer, ours, inbound, now)
    if is_stop_request(inbound.text):
        opt_out(session, customer, now)
        return EnrollmentState.OPTED_OUT
    enrollment = (
        session.get(Enrollment, ours.enrollment_id, with_for_update=True)
        if ours and ours.enrollment_id
        else None
    )
    if enrollment is None or reply is None:
        return "recorded"
    _record_fact(
        session, reply, ContactEventKind.WHATSAPP_REPLY, ContactChannel.WHATSAPP, reply.id, now
    )
    close_if_goal_met(session, enrollment, session.get_one(Campaign, enrollment.campaign_id), now)
    return "recorded"


def _last_sent_to(session: Session, address: str) -> Message | None:
    """The conversation a reply without a quote belongs to: our latest message to that
    number (WhatsApp fills `context.id` only when the customer swipes to reply)."""
    return session.scalars(
        select(Message)
        .where(
            Message.to_address == address,
            Message.channel == ContactChannel.WHATSAPP,
            Message.direction == Direction.OUTBOUND,
            Message.sent_at.is_not(None),
        )
        .order_by(Message.sent_at.desc())
        .limit(1)
    ).first()


def _reply_customer(
    session: Session, ours: Message | None, inbound: InboundMessage
) -> Customer | None:
    if ours is not None:
        return session.get(Customer, ours.customer_id, with_for_update=True)
    return session.scalars(
        select(Customer)
        .where(Customer.phone == inbound.from_address)
        .order_by(Customer.updated_at.desc())
        .with_for_update()
    ).first()


def _store_reply(
    session: Session,
    customer: Customer,
    ours: Message | None,
    inbound: InboundMessage,
    now: datetime,
) -> Message | None:
    row = session.execute(
        insert(Message)
        .values(
            customer_id=customer.id,
            enrollment_id=ours.enrollment_id if ours else None,
            campaign_id=ours.campaign_id if ours else None,
            channel=inbound.channel,
            direction=Direction.INBOUND,
            purpose=MessagePurpose.REPLY,
            status=MessageStatus.RECEIVED,
            body=inbound.text,
            provider_message_id=inbound.provider_message_id,
            idempotency_key=f"in:{inbound.provider_message_id}",
            sent_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Message.id)
    ).scalar()
    return session.get(Message, row) if row else None


def opt_out(session: Session, customer: Customer, now: datetime) -> None:
    """The customer said stop: never contact again in any campaign; calls in flight finish."""
    customer.opted_out, customer.opted_out_at = True, now
    active = list(
        session.scalars(
            select(Enrollment.id).where(
                Enrollment.customer_id == customer.id,
                Enrollment.state.in_(
                    (
                        EnrollmentState.ACTIVE,
                        EnrollmentState.UNRESOLVED,
                        EnrollmentState.NOT_ANSWERED,
                    )
                ),
            )
        )
    )
    if active:
        session.execute(
            update(Enrollment)
            .where(Enrollment.id.in_(active))
            .values(
                state=EnrollmentState.OPTED_OUT,
                closed_at=now,
                close_reason="customer asked to stop",
            )
        )
        cancel_open_work(session, now, enrollment_ids=active, reason="customer opted out")


def _record_fact(
    session: Session, message: Message, kind: str, channel: str, source_id: uuid.UUID, now: datetime
) -> None:
    if message.enrollment_id is None or message.campaign_id is None:
        return
    session.execute(
        insert(ContactEvent)
        .values(
            enrollment_id=message.enrollment_id,
            customer_id=message.customer_id,
            campaign_id=message.campaign_id,
            kind=kind,
            channel=channel,
            source_id=source_id,
            occurred_at=now,
            data={},
        )
        .on_conflict_do_nothing()
    )
    if kind == ContactEventKind.EMAIL_DELIVERED:
        enrollment = session.get_one(Enrollment, message.enrollment_id, with_for_update=True)
        close_if_goal_met(session, enrollment, session.get_one(Campaign, message.campaign_id), now)
