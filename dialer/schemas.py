"""Input schemas that mirror seed 002 (CampaignOut) and seed 003's batch settings.

Validation happens here, at the edge: every error names its field and reason.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from dialer.errors import ValidationFailed
from dialer.phones import InvalidPhone, normalize_phone
from dialer.policies.retry import (
    MAX_DELAY_MINUTES,
    MAX_OUTCOME_DELAYS,
    MAX_TRIES_LIMIT,
    OutcomeRetries,
    OutcomeRule,
)
from dialer.policies.templates import SUBJECT_MAX_CHARS, VOICEMAIL_MESSAGE_MAX_CHARS
from dialer.policies.vocabulary import (
    FallbackChannel,
    Outcome,
    StopSignal,
    SuppressionSource,
    WebhookEventType,
)
from dialer.policies.zones import ZONE_NAME_MAX_LENGTH, parse_zone

DEFAULT_WEEKDAYS = [0, 1, 2, 3, 4]
# Seeds are silent on a default; two retries (2 h, then a day) match whatsapp_after_attempts=3.
DEFAULT_ATTEMPT_DELAYS_MINUTES = [120, 1440]

# Seed 002 names the fallback channel's fields after WhatsApp, the one channel it knows;
# the campaign columns are channel-neutral. Wire name -> column name; every other
# campaign field is stored under its wire name.
FALLBACK_WIRE_NAMES: Final[Mapping[str, str]] = {
    "whatsapp_channel_id": "fallback_channel_id",
    "whatsapp_first_message": "fallback_first_message",
    "whatsapp_after_attempts": "fallback_after_attempts",
}


def column_of(wire_name: str) -> str:
    """The campaigns column a seed 002 field is stored in."""
    return FALLBACK_WIRE_NAMES.get(wire_name, wire_name)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        return refuse_nul(value)


def refuse_nul(value: Any) -> Any:
    """PostgreSQL text and JSON cannot hold NUL: refuse it here, naming the field, not at
    insert. Strings inside lists and mappings (``fields``, ``variables``) count, keys too."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("must not contain NUL characters")
        elif isinstance(item, dict):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple | set | frozenset):
            pending += list(item)
    return value


# A wall-clock time in the contact's zone, written "09:00" or "09:00:00". Declared as a
# pattern, not JSON Schema's format "time", which requires an offset ("09:00:00Z"): the
# window is local time and is sent without one.
WALL_CLOCK_TIME_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
    "examples": ["09:00:00"],
}
WallClockTime = Annotated[time, WithJsonSchema(WALL_CLOCK_TIME_SCHEMA)]


class CallWindowIn(_Strict):
    """seed 002 CampaignCallWindow; weekdays 0=Monday .. 6=Sunday."""

    start: WallClockTime = time(9, 0)
    end: WallClockTime = time(19, 0)
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: list(DEFAULT_WEEKDAYS)
    )


class ContactObjectiveIn(_Strict):
    type: Literal["contact"] = "contact"
    channels: list[Literal["call", "whatsapp", "sms"]] = Field(default_factory=list)
    min_count: int = Field(default=1, ge=1)


class EmailObjectiveIn(_Strict):
    type: Literal["email"] = "email"
    min_count: int = Field(default=1, ge=1)


class AiObjectiveIn(_Strict):
    type: Literal["ai"] = "ai"
    label_in: list[Literal["positive", "negative", "neutral"]] = Field(default_factory=list)
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)


Objective = Annotated[
    ContactObjectiveIn | EmailObjectiveIn | AiObjectiveIn, Field(discriminator="type")
]


class GoalSpecIn(_Strict):
    objectives: list[Objective] = Field(default_factory=list)


class AgentIn(_Strict):
    """A campaign file may name its agent and caller IDs instead of referring to ids."""

    name: str = Field(min_length=1, max_length=255)
    provider_agent_id: str = Field(min_length=1, max_length=255)
    # Registry names, checked by the service (the registry is above this layer).
    provider: str | None = Field(
        default=None, min_length=1, max_length=64, description="Default: DIALER_PROVIDER."
    )
    fallback_provider: str | None = Field(default=None, min_length=1, max_length=64)
    fallback_provider_agent_id: str | None = Field(
        default=None, min_length=1, max_length=255, description="Default: provider_agent_id."
    )
    phone_numbers: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fallback_named(self) -> AgentIn:
        if self.fallback_provider_agent_id is not None and self.fallback_provider is None:
            raise ValueError("fallback_provider_agent_id: needs a fallback_provider")
        return self


class OutcomeRetryIn(_Strict):
    """One unanswered outcome's retry settings; a field left out keeps the plain plan."""

    delays_minutes: list[Annotated[int, Field(ge=0, le=MAX_DELAY_MINUTES)]] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_OUTCOME_DELAYS,
        description="Minutes to wait after the 1st, 2nd, ... call that ended with this "
        "outcome (the last one repeats); default: call_attempt_delays by attempt number.",
    )
    max_tries: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TRIES_LIMIT,
        description="Calls ending with this outcome after which the customer is not "
        "called again (closed as not_answered); default: no limit of its own.",
    )


StopOutcomeName = Literal["opt_out", "wrong_number"]


def _all_stop_outcomes() -> list[StopOutcomeName]:
    return ["opt_out", "wrong_number"]


class RetryByOutcomeIn(_Strict):
    """Extension to seed 002 (issue 16): retries per unanswered outcome.

    The campaign's call_attempt_delays still caps the calls per round at
    len(call_attempt_delays) + 1. The defaults are the plain plan's behaviour.
    """

    busy: OutcomeRetryIn | None = None
    no_answer: OutcomeRetryIn | None = None
    voicemail: OutcomeRetryIn | None = None
    failed: OutcomeRetryIn | None = None
    retry_voicemail: bool = Field(
        default=True, description="False: a call that reached voicemail ends the calling."
    )
    stop_outcomes: list[StopOutcomeName] = Field(
        default_factory=_all_stop_outcomes,
        max_length=len(StopSignal),
        description="Call extraction keys (opt_out: true, wrong_number: true) that close "
        "the customer's enrollment with no more calls or fallback. opt_out is required.",
    )

    @field_validator("stop_outcomes")
    @classmethod
    def _opt_out_always(cls, value: list[StopOutcomeName]) -> list[StopOutcomeName]:
        if StopSignal.OPT_OUT not in value:
            raise ValueError("must include 'opt_out': an opt-out request is always honoured")
        return sorted(set(value))

    def to_policy(self) -> OutcomeRetries:
        rules = {
            Outcome(name): OutcomeRule(
                tuple(rule.delays_minutes) if rule.delays_minutes is not None else None,
                rule.max_tries,
            )
            for name in ("busy", "no_answer", "voicemail", "failed")
            if (rule := getattr(self, name)) is not None
        }
        return OutcomeRetries(
            rules, self.retry_voicemail, frozenset(StopSignal(s) for s in self.stop_outcomes)
        )


class ChannelIn(_Strict):
    name: str = Field(min_length=1, max_length=255)
    address: str = Field(min_length=1, max_length=255)


class CampaignSpec(_Strict):
    """What a user writes to create a campaign (JSON or YAML)."""

    name: str = Field(min_length=1, max_length=255)
    agent_id: uuid.UUID | None = None
    agent: AgentIn | None = None
    phone_number_id: uuid.UUID | None = None
    phone_number_ids: list[uuid.UUID] = Field(default_factory=list)
    phone_rotation_strategy: Literal["random", "sequential", "round_robin"] = "round_robin"
    email_channel_id: uuid.UUID | None = None
    whatsapp_channel_id: uuid.UUID | None = None
    email_channel: ChannelIn | None = None
    whatsapp_channel: ChannelIn | None = None
    goal: str | None = None
    goal_spec: GoalSpecIn = Field(default_factory=GoalSpecIn)
    goal_logic: Literal["all", "any"] = "all"
    first_contact_channel: Literal["call", "whatsapp", "sms"] = "call"
    fallback_channel: Literal["whatsapp", "sms"] = Field(
        default="whatsapp",
        description="Extension to seed 002: the message channel of the fallback after "
        "unanswered calls (and of a message-first campaign's first contact). Seed 002's "
        "whatsapp_channel_id / whatsapp_channel / whatsapp_first_message / "
        "whatsapp_after_attempts configure that channel, whichever it is: with 'sms', "
        "whatsapp_channel is the SMS sender (an E.164 number or a Twilio Messaging "
        "Service SID, MG...).",
    )
    call_opening_message: str | None = None
    whatsapp_first_message: str | None = None
    whatsapp_after_attempts: int = Field(default=3, ge=1, le=100)
    voicemail_action: Literal["hang_up", "leave_message"] | None = Field(
        default=None,
        description="Extension to seed 002 (issue 16): what the agent does on reaching "
        "voicemail, sent with each call; null leaves the agent's own setting.",
    )
    voicemail_message: str | None = Field(
        default=None,
        max_length=VOICEMAIL_MESSAGE_MAX_CHARS,
        description="The message left with leave_message; {{placeholders}} as in the messages.",
    )
    email_subject: str | None = Field(
        default=None,
        max_length=SUBJECT_MAX_CHARS,
        description="Subject of the campaign's e-mails; {{placeholders}} as in the messages.",
    )
    email_goal_counts: Literal["accepted", "delivered"] = Field(
        default="delivered",
        description=(
            "What an email objective counts: mail the server accepted (SMTP 250, SendGrid "
            "'processed') or mail reported delivered (SendGrid 'delivered')."
        ),
    )
    call_attempt_delays: list[Annotated[int, Field(ge=0, le=60 * 24 * 30)]] = Field(
        default_factory=lambda: list(DEFAULT_ATTEMPT_DELAYS_MINUTES), max_length=20
    )
    retry_by_outcome: RetryByOutcomeIn = Field(default_factory=RetryByOutcomeIn)
    call_working_hours: CallWindowIn = Field(default_factory=CallWindowIn)
    timezone: str = Field(default="UTC", max_length=ZONE_NAME_MAX_LENGTH)
    concurrency: int = Field(default=10, ge=1, le=1000)
    max_calls_per_day: int | None = Field(default=None, ge=1, le=10_000_000)
    schedule_type: Literal["immediate", "scheduled"] = "immediate"
    scheduled_at: datetime | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    customer_fields: list[str] = Field(
        default_factory=list, description="Extra CSV columns that templates may use."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        # parse_zone, not ZoneInfo: a directory name ("America") raises OSError there.
        try:
            parse_zone(value)
        except ValidationFailed as exc:
            raise ValueError(exc.reason) from None
        return value

    @field_validator("email_subject")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        # A subject is a mail header: a line break would let a template add headers.
        if value is not None and any(ch in value for ch in "\r\n\x0b\x0c\x85\u2028\u2029"):
            raise ValueError("must be one line: CR and LF are not allowed")
        return value

    @field_validator("scheduled_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a UTC offset, e.g. 2026-12-01T09:00:00Z")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if (self.agent_id is None) == (self.agent is None):
            raise ValueError("give exactly one of agent_id or agent")
        if self.schedule_type == "scheduled" and self.scheduled_at is None:
            raise ValueError("scheduled_at is required when schedule_type is 'scheduled'")
        first = self.first_contact_channel
        if first != "call" and first != self.fallback_channel:
            raise ValueError(
                f"first_contact_channel {first!r} needs fallback_channel {first!r}"
                f" (got {self.fallback_channel!r})"
            )
        if first != "call" and not self.has_whatsapp:
            raise ValueError(
                f"first_contact_channel {first!r} needs a sender: whatsapp_channel_id or"
                " whatsapp_channel (the fallback channel's fields)"
            )
        if self.voicemail_action == "leave_message" and not self.voicemail_message:
            raise ValueError("voicemail_action 'leave_message' needs voicemail_message")
        if first != "call" and not self.whatsapp_first_message:
            raise ValueError(f"first_contact_channel {first!r} needs whatsapp_first_message")
        return self

    @property
    def has_whatsapp(self) -> bool:
        """A sender for the fallback channel (seed 002 names its fields after WhatsApp)."""
        return self.whatsapp_channel_id is not None or self.whatsapp_channel is not None

    @property
    def fallback(self) -> FallbackChannel:
        return FallbackChannel(self.fallback_channel)

    @property
    def has_email(self) -> bool:
        return self.email_channel_id is not None or self.email_channel is not None


_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
CUSTOMER_COLUMNS = ("customer_id", "name", "surname", "email", "phone", "timezone")


class CustomerIn(_Strict):
    """One customer, from a CSV row or a JSON body (seed 000 CustomerOut fields).

    ``phone`` is normalised to E.164; pass ``context={"default_region": "US"}`` to
    accept national numbers. An empty phone is allowed: the customer is enrolled
    as missing_contact.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    customer_id: str | None = Field(default=None, max_length=255)
    name: str | None = Field(default=None, max_length=255)
    surname: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    timezone: str | None = Field(default=None, max_length=ZONE_NAME_MAX_LENGTH)
    fields: dict[str, str] = Field(default_factory=dict)

    @field_validator("customer_id", "name", "surname", "email", "phone", "timezone", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(_EMAIL, value):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            CampaignSpec._known_zone(value)
        return value

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        region = (info.context or {}).get("default_region")
        try:
            return normalize_phone(value, region)
        except InvalidPhone as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _identifiable(self) -> CustomerIn:
        if not (self.customer_id or self.phone or self.email):
            raise ValueError("a customer needs at least one of customer_id, phone, email")
        return self


SUPPRESSION_SOURCE_PATTERN: Final = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"


class SuppressionIn(_Strict):
    """A number for the account's do-not-contact list (API and CLI)."""

    phone: str = Field(max_length=50, description="E.164, e.g. +12125550123")
    source: str = Field(
        default=str(SuppressionSource.MANUAL), pattern=SUPPRESSION_SOURCE_PATTERN, max_length=64
    )
    reason: str | None = Field(default=None, max_length=200)
    listed_on: date | None = None

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not value.startswith("+"):
            raise ValueError("write the number in E.164, +<country><number>")
        try:
            return normalize_phone(value)
        except InvalidPhone as exc:
            raise ValueError(str(exc)) from None


class WebhookEndpointIn(_Strict):
    """An account's event webhook endpoint (API and CLI; issue 17)."""

    url: str = Field(min_length=1, max_length=2048, description="http(s) URL to POST events to")
    events: list[WebhookEventType] = Field(
        min_length=1, max_length=len(WebhookEventType), description="Events to receive."
    )
    description: str | None = Field(default=None, max_length=200)


class WebhookEndpointPatch(_Strict):
    enabled: bool = Field(description="false: disable; true: enable again (failures reset).")
