"""WhatsApp, SMS and email: send what is due, record delivery, take replies (STOP opts out).

A reply is a contact on its own channel: ``whatsapp_reply`` or ``sms_reply``
(ContactEventKind), so goals can count one channel and not the other. Opt-out is one
rule for both channels: a short reply whose first word is a stop keyword (Twilio's
standard ones among them), or a reply the provider itself flagged as an opt-out
(Twilio's ``OptOutType=STOP``). HELP/INFO is stored as a reply but is not a contact
towards the goal: it asks what the messages are, and Twilio answers it itself.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.dependencies import UnitOfWork
from dialer.policies.retry import RetryPlan, first_call_after_message
from dialer.policies.templates import render, render_subject
from dialer.policies.vocabulary import (
    CampaignStatus,
    ContactEventKind,
    Direction,
    EnrollmentState,
    MessagePurpose,
    MessageStatus,
    SuppressionSource,
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
from dialer.services.suppressions import SUPPRESSED, suppress_customer, suppressed_pairs
from models import Agent, Campaign, Channel, ContactEvent, Customer, Enrollment, Message
from models.sql import among

# Opt-out keywords, as carriers and WhatsApp users write them, in the languages we see most;
# Twilio's standard set (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT, REVOKE) too.
STOP_WORDS = frozenset(
    {
        "stop",
        "revoke",
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


# Help keywords (carrier rules, Twilio's standard HELP and INFO).
HELP_WORDS = frozenset({"help", "info", "aiuto", "ayuda"})
# A reply channel -> the fact its replies record.
REPLY_KINDS = {
    ContactChannel.WHATSAPP: ContactEventKind.WHATSAPP_REPLY,
    ContactChannel.SMS: ContactEventKind.SMS_REPLY,
}


def _keyword(text: str, words: frozenset[str]) -> bool:
    found = re.findall(r"[\w\-ê]+", text.strip().lower())
    return bool(found) and found[0] in words and len(found) <= 3


def is_stop_request(text: str) -> bool:
    return _keyword(text, STOP_WORDS)


def is_help_request(text: str) -> bool:
    return _keyword(text, HELP_WORDS)


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
        if message.channel == ContactChannel.EMAIL:
            _record_email_facts(session, message, now)  # accepted: an objective may count it
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
    if suppressed_pairs(session, [(customer.account_id, customer.phone)]):
        # Any channel: a listed person is not messaged either (read under the row lock).
        message.status, message.error = MessageStatus.CANCELED, SUPPRESSED
        return MessageStatus.CANCELED
    campaign = session.get_one(Campaign, message.campaign_id) if message.campaign_id else None
    channel = session.get(Channel, message.channel_id) if message.channel_id else None
    body, subject = message.body or "", None
    if campaign is not None:
        agent = session.get_one(Agent, campaign.agent_id)
        values = template_values(customer, campaign, agent.name)
        body = render(body, values)
        if message.channel == ContactChannel.EMAIL and campaign.email_subject:
            subject = render_subject(campaign.email_subject, values)
    return SendMessageRequest(
        idempotency_key=message.idempotency_key or str(message.id),
        channel=message.channel,
        to=message.to_address or "",
        body=body,
        subject=subject,
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
    message = _message_of(session, update_)
    if message is None or _rank(update_.status) <= _rank(message.status):
        return False
    message.status = MessageStatus(update_.status)
    message.error = update_.error or message.error
    if update_.status == MessageStatus.DELIVERED:
        message.delivered_at = now
    if message.channel == ContactChannel.EMAIL:
        _record_email_facts(session, message, now)
    return True


def _message_of(session: Session, update_: MessageStatusUpdate) -> Message | None:
    """The message an event is about: by our id when the provider echoes it, else its id."""
    if update_.message_id is not None:
        try:
            ours = uuid.UUID(update_.message_id)
        except ValueError:
            return None
        return session.get(Message, ours, with_for_update=True)
    return session.scalars(
        select(Message)
        .where(Message.provider_message_id == update_.provider_message_id)
        .with_for_update()
    ).first()


def _record_email_facts(session: Session, message: Message, now: datetime) -> None:
    """Accepted (sent or further, not failed) and delivered e-mail facts, once per message.

    A delivery reported before the acceptance (events out of order) records both; the
    campaign's ``email_goal_counts`` says which of the two its email objectives count.
    """
    if message.enrollment_id is None or message.status not in _EMAIL_ACCEPTED:
        return
    kinds = [ContactEventKind.EMAIL_ACCEPTED]
    if message.status in (MessageStatus.DELIVERED, MessageStatus.READ):
        kinds.append(ContactEventKind.EMAIL_DELIVERED)
    for kind in kinds:
        _record_fact(session, message, kind, ContactChannel.EMAIL, message.id, now)
    enrollment = session.get_one(Enrollment, message.enrollment_id, with_for_update=True)
    close_if_goal_met(session, enrollment, session.get_one(Campaign, message.campaign_id), now)


_EMAIL_ACCEPTED = frozenset({MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ})


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
    ours = ours or _last_sent_to(session, inbound.from_address, ContactChannel(inbound.channel))
    customer = _reply_customer(session, ours, inbound)
    if customer is None:
        return "unmatched"
    reply = _store_reply(session, customer, ours, inbound, now)
    if inbound.opt_out or is_stop_request(inbound.text):
        opt_out(session, customer, now)
        return EnrollmentState.OPTED_OUT
    enrollment = (
        session.get(Enrollment, ours.enrollment_id, with_for_update=True)
        if ours and ours.enrollment_id
        else None
    )
    kind = REPLY_KINDS.get(ContactChannel(inbound.channel))
    if enrollment is None or reply is None or kind is None or is_help_request(inbound.text):
        return "recorded"
    _record_fact(session, reply, kind, ContactChannel(inbound.channel), reply.id, now)
    close_if_goal_met(session, enrollment, session.get_one(Campaign, enrollment.campaign_id), now)
    return "recorded"


def _last_sent_to(session: Session, address: str, channel: ContactChannel) -> Message | None:
    """The conversation a reply without a quote belongs to: our latest message to that
    number on its channel (WhatsApp fills `context.id` only when the customer swipes to
    reply; SMS never quotes)."""
    return session.scalars(
        select(Message)
        .where(
            Message.to_address == address,
            Message.channel == channel,
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
    suppress_customer(session, customer, SuppressionSource.STOP_REPLY, now)
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
