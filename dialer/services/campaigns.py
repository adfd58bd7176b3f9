"""Create campaigns from a validated spec: resolve the agent, caller IDs and channels,
and reject what can never work (a window that never opens, an unknown placeholder)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dialer.errors import Conflict, NotFound, ValidationFailed
from dialer.phones import InvalidPhone, normalize_phone
from dialer.policies.retry import OutcomeRetries, RetryPlan
from dialer.policies.templates import (
    CUSTOMER_TEMPLATE_FIELDS,
    validate_subject,
    validate_template,
)
from dialer.policies.vocabulary import Channel as ContactChannel
from dialer.policies.window import CallWindow, LegalBound, WorkingHours, validate_window
from dialer.providers.catalog import PROVIDERS
from dialer.providers.registry import Registry
from dialer.schemas import AgentIn, CampaignSpec, ChannelIn, RetryByOutcomeIn, column_of
from dialer.settings import Settings
from models import Account, Agent, Campaign, Channel, PhoneNumber

CAMPAIGN_TEMPLATE_FIELDS = frozenset({"campaign_name", "agent_name"})


def legal_bound(settings: Settings) -> LegalBound:
    return LegalBound(start=settings.legal_window_start, end=settings.legal_window_end)


def window_of(campaign: Campaign, legal: LegalBound) -> CallWindow:
    """The campaign's effective window (its hours inside the legal bound)."""
    hours = WorkingHours(
        campaign.window_start, campaign.window_end, frozenset(campaign.window_weekdays)
    )
    return CallWindow(hours=hours, legal=legal)


def outcome_retries_of(campaign: Campaign) -> OutcomeRetries:
    """The campaign's stored retry_by_outcome as the policy's value ({} is the defaults)."""
    return RetryByOutcomeIn.model_validate(campaign.retry_by_outcome or {}).to_policy()


def retry_plan_of(campaign: Campaign, retries: OutcomeRetries | None = None) -> RetryPlan:
    """The campaign's retry settings; no fallback without a sender and a message."""
    ready = campaign.fallback_channel_id is not None and bool(campaign.fallback_first_message)
    return RetryPlan(
        tuple(campaign.call_attempt_delays),
        campaign.fallback_after_attempts,
        campaign.fallback_channel if ready else None,
        outcome_retries_of(campaign) if retries is None else retries,
    )


def template_fields(spec: CampaignSpec) -> frozenset[str]:
    """Placeholders a campaign's messages may use."""
    return (
        CUSTOMER_TEMPLATE_FIELDS
        | CAMPAIGN_TEMPLATE_FIELDS
        | set(spec.customer_fields)
        | set(spec.variables)
    )


def validate_spec(spec: CampaignSpec, legal: LegalBound) -> CallWindow:
    """Checks that need more than the schema: the window and the templates."""
    wh = spec.call_working_hours
    window = validate_window(WorkingHours(wh.start, wh.end, frozenset(wh.weekdays)), legal)
    known = template_fields(spec)
    for name in ("call_opening_message", "whatsapp_first_message", "voicemail_message"):
        text = getattr(spec, name)
        if text:
            validate_template(name, text, known)
    if spec.email_subject:
        validate_subject("email_subject", spec.email_subject, known)
    return window


def create_campaign(
    session: Session, account: Account, spec: CampaignSpec, legal: LegalBound
) -> Campaign:
    validate_spec(spec, legal)
    _refuse_duplicate_name(session, account, spec.name)
    agent = _resolve_agent(session, account, spec)
    number_ids = _resolve_numbers(session, account, agent, spec)
    campaign = Campaign(
        account_id=account.id,
        agent_id=agent.id,
        phone_number_id=spec.phone_number_id or (number_ids[0] if number_ids else None),
        phone_number_ids=number_ids,
        fallback_channel=spec.fallback,
        fallback_channel_id=_resolve_channel(
            session,
            account,
            ContactChannel(spec.fallback),
            spec.whatsapp_channel_id,
            spec.whatsapp_channel,
        ),
        email_channel_id=_resolve_channel(
            session, account, ContactChannel.EMAIL, spec.email_channel_id, spec.email_channel
        ),
        window_start=spec.call_working_hours.start,
        window_end=spec.call_working_hours.end,
        window_weekdays=sorted(set(spec.call_working_hours.weekdays)),
        goal_spec=spec.goal_spec.model_dump(mode="json"),
        retry_by_outcome=spec.retry_by_outcome.model_dump(mode="json"),
        **_as_columns(
            spec,
            {
                "name",
                "goal",
                "goal_logic",
                "first_contact_channel",
                "call_opening_message",
                "whatsapp_first_message",
                "whatsapp_after_attempts",
                "voicemail_action",
                "voicemail_message",
                "email_subject",
                "email_goal_counts",
                "call_attempt_delays",
                "timezone",
                "concurrency",
                "max_calls_per_day",
                "schedule_type",
                "scheduled_at",
                "variables",
                "phone_rotation_strategy",
            },
        ),
    )
    session.add(campaign)
    session.flush()
    return campaign


def _as_columns(spec: CampaignSpec, fields: set[str]) -> dict[str, Any]:
    """The spec's fields under their column names (seed 002 spells some after WhatsApp)."""
    return {column_of(name): value for name, value in spec.model_dump(include=fields).items()}


def find_campaign(session: Session, account: Account, ref: str) -> Campaign:
    """A campaign of this account by id or by name."""
    query = select(Campaign).where(Campaign.account_id == account.id)
    try:
        query = query.where(Campaign.id == uuid.UUID(ref))
    except ValueError:
        query = query.where(Campaign.name == ref)
    campaign = session.scalars(query).first()
    if campaign is None:
        raise NotFound(f"no campaign {ref!r} in account {account.name!r}")
    return campaign


def _refuse_duplicate_name(session: Session, account: Account, name: str) -> None:
    q = select(Campaign.id).where(Campaign.account_id == account.id, Campaign.name == name)
    if session.scalar(q) is not None:
        raise Conflict(f"name: a campaign named {name!r} already exists")


def _resolve_agent(session: Session, account: Account, spec: CampaignSpec) -> Agent:
    if spec.agent_id is not None:
        agent = session.get(Agent, spec.agent_id)
        if agent is None or agent.account_id != account.id:
            raise ValidationFailed("agent_id", f"no agent {spec.agent_id} in this account")
        return agent
    assert spec.agent is not None  # the schema requires one of the two
    return _upsert_agent(session, account, spec.agent)


def _upsert_agent(session: Session, account: Account, block: AgentIn) -> Agent:
    check_agent_providers(block)
    values = {
        "provider": block.provider,
        "provider_agent_id": block.provider_agent_id,
        "fallback_provider": block.fallback_provider,
        "fallback_provider_agent_id": block.fallback_provider_agent_id,
    }
    session.execute(
        insert(Agent)
        .values(account_id=account.id, name=block.name, **values)
        .on_conflict_do_update(index_elements=["account_id", "name"], set_=values)
    )
    agent = session.scalars(
        select(Agent).where(Agent.account_id == account.id, Agent.name == block.name)
    ).one()
    for index, raw in enumerate(block.phone_numbers):
        _attach_number(session, account, agent, raw, f"agent.phone_numbers.{index}")
    return agent


def check_agent_providers(block: AgentIn, registry: Registry = PROVIDERS) -> None:
    """Each provider an agent names is a voice provider of the registry, else 422 naming it."""
    known = ", ".join(sorted(registry.voice))
    for field in ("provider", "fallback_provider"):
        name = getattr(block, field)
        if name is not None and name not in registry.voice:
            raise ValidationFailed(f"agent.{field}", f"{name!r} is not one of {known}")
    if block.fallback_provider is not None and block.fallback_provider == block.provider:
        raise ValidationFailed("agent.fallback_provider", "must differ from agent.provider")


def _attach_number(session: Session, account: Account, agent: Agent, raw: str, field: str) -> None:
    try:
        e164 = normalize_phone(raw)
    except InvalidPhone as exc:
        raise ValidationFailed(field, str(exc)) from None
    existing = session.scalars(
        select(PhoneNumber).where(PhoneNumber.account_id == account.id, PhoneNumber.e164 == e164)
    ).first()
    if existing is None:
        session.add(PhoneNumber(account_id=account.id, agent_id=agent.id, e164=e164))
    elif existing.agent_id != agent.id:
        raise ValidationFailed(field, f"{e164} belongs to another agent")
    session.flush()


def _resolve_numbers(
    session: Session, account: Account, agent: Agent, spec: CampaignSpec
) -> list[uuid.UUID]:
    """Caller IDs must belong to the campaign's agent (seed 004 from_number rule)."""
    owned = {
        n.id: n
        for n in session.scalars(select(PhoneNumber).where(PhoneNumber.agent_id == agent.id))
    }
    wanted = list(spec.phone_number_ids) or (
        [spec.phone_number_id] if spec.phone_number_id else list(owned)
    )
    for index, number_id in enumerate(wanted):
        if number_id not in owned:
            raise ValidationFailed(
                f"phone_number_ids.{index}",
                f"number {number_id} does not belong to agent {agent.name!r}",
            )
    if not wanted:
        raise ValidationFailed("phone_number_ids", "the agent has no caller-ID number; add one")
    if spec.phone_number_ids or spec.phone_number_id:
        return wanted  # the user's order is the rotation order
    return sorted(wanted, key=lambda i: owned[i].e164)


def _resolve_channel(
    session: Session,
    account: Account,
    kind: ContactChannel,
    channel_id: uuid.UUID | None,
    block: ChannelIn | None,
) -> uuid.UUID | None:
    if channel_id is not None:
        channel = session.get(Channel, channel_id)
        if channel is None or channel.account_id != account.id or channel.kind != kind:
            raise ValidationFailed(
                f"{kind}_channel_id", f"no {kind} channel {channel_id} in this account"
            )
        return channel.id
    if block is None:
        return None
    session.execute(
        insert(Channel)
        .values(account_id=account.id, kind=kind, name=block.name, address=block.address)
        .on_conflict_do_update(
            index_elements=["account_id", "kind", "name"], set_={"address": block.address}
        )
    )
    return session.scalars(
        select(Channel.id).where(
            Channel.account_id == account.id, Channel.kind == kind, Channel.name == block.name
        )
    ).one()
