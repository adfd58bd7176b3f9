"""A simulated voice-AI provider and WhatsApp/email sender, for the demo and tests.

Several worker processes share one simulator, so every bit of its state lives in
Redis under ``sim:{namespace}:`` and never in process memory:

- ``idem:{key}`` / ``msgidem:{key}``: the call/message id an idempotency key created;
- ``call:{id}`` / ``message:{id}``: what was decided at placement (JSON);
- ``ledger`` / ``messages``: one JSON entry per call placed / message sent, in order;
- ``events`` (sorted set scored by simulated due time, epoch seconds) and
  ``event_bodies`` (hash): the webhook bodies still to deliver, taken by
  ``pop_due_events`` atomically;
- ``tries:{key}``: how many times a key was requested (drives transient errors).

Everything a call will do is decided when it is placed, from
``random.Random(f"{seed}:{idempotency_key}")``, so a run is reproducible and a
retried request can never change the outcome. Time is the injected clock; nothing
here sleeps. Event ids are ``f"{object_id}:{status}"`` (``call_x:ringing``,
``call_x:completed``, ``msg_x:delivered``, ``inb_x:inbound``) so a duplicate
delivery carries the same id and the pipeline can drop it.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final, NamedTuple, cast

import phonenumbers
import redis

from dialer.dependencies import Clock
from dialer.policies.vocabulary import AiLabel, Channel, Outcome, ProviderCallStatus
from dialer.providers.base import (
    CallAnalysis,
    CallRecord,
    Gate,
    InboundMessage,
    MessageStatusUpdate,
    NotSent,
    PermanentProviderError,
    PlaceCallRequest,
    Placement,
    ProviderEvent,
    SendMessageRequest,
    SendResult,
    TransientProviderError,
)

PROVIDER_NAME: Final = "simulated"
CALL_STATUS_EVENT: Final = "call.status"
MESSAGE_INBOUND_EVENT: Final = "message.inbound"
MESSAGE_STATUS_EVENT: Final = "message.status"
EVENT_KINDS: Final = (CALL_STATUS_EVENT, MESSAGE_INBOUND_EVENT, MESSAGE_STATUS_EVENT)
MESSAGE_STATUSES: Final = ("sent", "delivered", "read", "failed")

DEFAULT_FROM_NUMBER: Final = "+15550100001"
CALLBACK_REPLY: Final = "Yes, please call me back"
THANKS_REPLY: Final = "Thanks"
STOP_REPLY: Final = "STOP"

Bounds = tuple[float, float]  # (low, high), inclusive

# A busy line answers with a busy tone within a few seconds of ringing.
_BUSY_TONE_SECONDS: Final[Bounds] = (1.0, 4.0)
# A duplicate delivery arrives shortly after the original, like a webhook retry.
_DUPLICATE_DELAY_SECONDS: Final[Bounds] = (0.5, 5.0)
_FAILURE_CODES: Final = {
    "carrier_unavailable": "The carrier could not route the call",
    "network_error": "The telephony network dropped the call setup",
    "call_rejected": "The destination network rejected the call",
}


# --------------------------------------------------------------------------- profile


@dataclass(frozen=True)
class SimulationProfile:
    """How the simulated world behaves. Outcome and label weights are normalised."""

    seed: int = 0
    answer_rate: float = 0.45
    busy_rate: float = 0.15
    voicemail_rate: float = 0.15
    no_answer_rate: float = 0.2
    failure_rate: float = 0.05
    # Fraction of place_call requests refused with TransientProviderError before
    # anything is placed; drawn per (seed, key, try number) so a retry can succeed.
    transient_error_rate: float = 0.0
    ringing_after_seconds: Bounds = (1.0, 3.0)
    ring_seconds: Bounds = (5.0, 25.0)  # from ringing to pick-up or give-up
    answered_seconds: Bounds = (30.0, 300.0)
    voicemail_seconds: Bounds = (10.0, 40.0)
    positive_rate: float = 0.5
    neutral_rate: float = 0.3
    negative_rate: float = 0.2
    positive_score: Bounds = (0.6, 1.0)
    neutral_score: Bounds = (0.3, 0.7)
    negative_score: Bounds = (0.0, 0.4)
    cost_per_minute_millicents: int = 1200
    whatsapp_reply_rate: float = 0.3
    stop_reply_rate: float = 0.1
    reply_delay_seconds: Bounds = (60.0, 900.0)
    delivery_delay_seconds: Bounds = (1.0, 10.0)
    # Fault knobs for tests: deliver the last event twice / the ringing event last.
    duplicate_event_rate: float = 0.0
    reorder_rate: float = 0.0

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name.endswith("_rate"):
                _require_fraction(spec.name, value)
            elif isinstance(value, tuple):
                _require_range(spec.name, value)
        _require_positive_total("outcome rates", self.outcome_weights().values())
        _require_positive_total("label rates", self.label_weights().values())
        if self.cost_per_minute_millicents < 0:
            raise ValueError("cost_per_minute_millicents: must be >= 0")

    def outcome_weights(self) -> dict[Outcome, float]:
        return {
            Outcome.ANSWERED: self.answer_rate,
            Outcome.BUSY: self.busy_rate,
            Outcome.VOICEMAIL: self.voicemail_rate,
            Outcome.NO_ANSWER: self.no_answer_rate,
            Outcome.FAILED: self.failure_rate,
        }

    def label_weights(self) -> dict[AiLabel, float]:
        return {
            AiLabel.POSITIVE: self.positive_rate,
            AiLabel.NEUTRAL: self.neutral_rate,
            AiLabel.NEGATIVE: self.negative_rate,
        }

    def score_range(self, label: AiLabel) -> Bounds:
        return {
            AiLabel.POSITIVE: self.positive_score,
            AiLabel.NEUTRAL: self.neutral_score,
            AiLabel.NEGATIVE: self.negative_score,
        }[label]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimulationProfile:
        """Build from settings (JSON/YAML): ranges may be lists; unknown keys are errors."""
        known = {spec.name: spec for spec in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown simulation setting; known: {', '.join(known)}")
        defaults = cls()
        converted = {
            name: _coerce_setting(name, raw, getattr(defaults, name))
            for name, raw in values.items()
        }
        return cls(**converted)


def _coerce_setting(name: str, raw: Any, default: Any) -> Any:
    """Convert one setting to the type of its default, naming it when that fails."""
    try:
        if isinstance(default, tuple):
            low, high = raw
            return (float(low), float(high))
        if isinstance(raw, bool):
            raise TypeError("a boolean is not a number")
        return int(raw) if isinstance(default, int) else float(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot use {raw!r} ({exc})") from None


def _require_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: must be between 0 and 1, got {value}")


def _require_range(name: str, value: tuple[float, ...]) -> None:
    if len(value) != 2 or not 0.0 <= value[0] <= value[1]:
        raise ValueError(f"{name}: must be (low, high) with 0 <= low <= high, got {value}")


def _require_positive_total(what: str, weights: Any) -> None:
    if sum(weights) <= 0:
        raise ValueError(f"{what}: at least one must be above 0")


# --------------------------------------------------------------------------- payloads


def call_event_id(call_id: str, status: str) -> str:
    """The stable id of a call's status event: a duplicate delivery carries the same id."""
    return f"{call_id}:{status}"


def call_status_event(record: CallRecord, provider: str = PROVIDER_NAME) -> ProviderEvent:
    """The ``call.status`` event reporting ``record``, dated when it reached its status."""
    return ProviderEvent(
        provider=provider,
        event_id=call_event_id(record.id, record.status),
        kind=CALL_STATUS_EVENT,
        occurred_at=_status_time(record),
        call=record,
    )


def message_status_event(
    update: MessageStatusUpdate, occurred_at: datetime, provider: str = PROVIDER_NAME
) -> ProviderEvent:
    return ProviderEvent(
        provider=provider,
        event_id=f"{update.provider_message_id}:{update.status}",
        kind=MESSAGE_STATUS_EVENT,
        occurred_at=occurred_at,
        message_status=update,
    )


def inbound_message_event(
    message: InboundMessage, occurred_at: datetime, provider: str = PROVIDER_NAME
) -> ProviderEvent:
    return ProviderEvent(
        provider=provider,
        event_id=f"{message.provider_message_id}:inbound",
        kind=MESSAGE_INBOUND_EVENT,
        occurred_at=occurred_at,
        inbound=message,
    )


def event_payload(event: ProviderEvent) -> dict[str, Any]:
    """The webhook body for ``event``: the exact inverse of ``parse_event_payload``."""
    body: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.kind,
        "occurred_at": _iso(event.occurred_at),
    }
    if event.kind == CALL_STATUS_EVENT and event.call is not None:
        body["call"] = call_record_to_payload(event.call)
    elif event.kind == MESSAGE_INBOUND_EVENT and event.inbound is not None:
        body["message"] = _inbound_to_payload(event.inbound)
    elif event.kind == MESSAGE_STATUS_EVENT and event.message_status is not None:
        body["message"] = _message_status_to_payload(event.message_status)
    else:
        raise ValueError(f"{event.kind}: the event carries no matching payload")
    return body


def call_record_to_payload(record: CallRecord) -> dict[str, Any]:
    """A call record in seed 004 field names, JSON-able."""
    return {
        "id": record.id,
        "agent_id": record.agent_id,
        "to": record.to,
        "from_number": record.from_number,
        "status": record.status,
        "direction": record.direction,
        "created_at": _iso_or_none(record.created_at),
        "ringing_at": _iso_or_none(record.ringing_at),
        "answered_at": _iso_or_none(record.answered_at),
        "ended_at": _iso_or_none(record.ended_at),
        "duration_seconds": record.duration_seconds,
        "billable_seconds": record.billable_seconds,
        "cost_millicents": record.cost_millicents,
        "extraction": None if record.extraction is None else dict(record.extraction),
        "extraction_status": record.extraction_status,
        "extraction_error": record.extraction_error,
        "provider_error_code": record.provider_error_code,
        "error_message": record.error_message,
        "hangup_reason": record.hangup_reason,
        "metadata": dict(record.metadata),
        "voicemail": record.voicemail,
        "analysis": None if record.analysis is None else _analysis_to_payload(record.analysis),
    }


_ANALYSIS_FIELDS: Final = tuple(f.name for f in fields(CallAnalysis))


def _analysis_to_payload(analysis: CallAnalysis) -> dict[str, Any]:
    # Its fields are all plain values: dataclasses.asdict's deep copy cost a tenth
    # of the simulator's time.
    return {name: getattr(analysis, name) for name in _ANALYSIS_FIELDS}


def _inbound_to_payload(message: InboundMessage) -> dict[str, Any]:
    return {
        "id": message.provider_message_id,
        "channel": message.channel,
        "from": message.from_address,
        "text": message.text,
        "in_reply_to": message.in_reply_to,
    }


def _message_status_to_payload(update: MessageStatusUpdate) -> dict[str, Any]:
    return {"id": update.provider_message_id, "status": update.status, "error": update.error}


def parse_event_payload(payload: Mapping[str, Any], provider: str = PROVIDER_NAME) -> ProviderEvent:
    """Read a webhook body; a malformed one raises ValueError naming the field."""
    kind = _Fields(payload, "event").choice("type", EVENT_KINDS)
    body = _Fields(payload, kind)
    event_id = body.text("event_id")
    occurred_at = body.time("occurred_at")
    if kind == CALL_STATUS_EVENT:
        call = call_record_from_payload(body.nested("call").data, where=kind)
        return ProviderEvent(provider, event_id, kind, occurred_at, call=call)
    message = body.nested("message")
    if kind == MESSAGE_INBOUND_EVENT:
        inbound = _inbound_from_fields(message)
        return ProviderEvent(provider, event_id, kind, occurred_at, inbound=inbound)
    update = MessageStatusUpdate(
        provider_message_id=message.text("id"),
        status=message.choice("status", MESSAGE_STATUSES),
        error=message.optional_text("error"),
    )
    return ProviderEvent(provider, event_id, kind, occurred_at, message_status=update)


def call_record_from_payload(
    payload: Mapping[str, Any], where: str = CALL_STATUS_EVENT
) -> CallRecord:
    """Read a seed 004 call record; errors read like "call.status: missing field 'id'"."""
    call = _Fields(payload, where)
    return CallRecord(
        id=call.text("id"),
        status=call.choice("status", tuple(ProviderCallStatus)),
        to=call.text("to"),
        from_number=call.optional_text("from_number"),
        agent_id=call.optional_text("agent_id"),
        direction=call.choice("direction", ("outbound", "inbound"), default="outbound"),
        created_at=call.optional_time("created_at"),
        ringing_at=call.optional_time("ringing_at"),
        answered_at=call.optional_time("answered_at"),
        ended_at=call.optional_time("ended_at"),
        duration_seconds=call.optional_number("duration_seconds"),
        billable_seconds=call.optional_int("billable_seconds"),
        cost_millicents=call.optional_int("cost_millicents"),
        extraction=call.optional_object("extraction"),
        extraction_status=call.optional_text("extraction_status"),
        extraction_error=call.optional_text("extraction_error"),
        provider_error_code=call.optional_text("provider_error_code"),
        error_message=call.optional_text("error_message"),
        hangup_reason=call.optional_text("hangup_reason"),
        voicemail=call.flag("voicemail"),
        metadata=call.string_map("metadata"),
        analysis=_analysis_from_fields(call),
    )


def _analysis_from_fields(call: _Fields) -> CallAnalysis | None:
    if call.data.get("analysis") is None:
        return None
    analysis = call.nested("analysis", prefix="analysis.")
    return CallAnalysis(
        summary_title=analysis.optional_text("summary_title"),
        transcript_summary=analysis.optional_text("transcript_summary"),
        call_successful=analysis.optional_text("call_successful"),
        goal_result=analysis.optional_text("goal_result"),
        goal_rationale=analysis.optional_text("goal_rationale"),
        goal_score=analysis.optional_number("goal_score"),
        sentiment=analysis.optional_text("sentiment"),
        sentiment_rationale=analysis.optional_text("sentiment_rationale"),
        follow_up_required=analysis.optional_flag("follow_up_required"),
        follow_up_rationale=analysis.optional_text("follow_up_rationale"),
        escalation_required=analysis.optional_flag("escalation_required"),
        escalation_rationale=analysis.optional_text("escalation_rationale"),
        messages_count=analysis.optional_int("messages_count") or 0,
    )


def _inbound_from_fields(message: _Fields) -> InboundMessage:
    return InboundMessage(
        channel=message.text("channel"),
        from_address=message.text("from"),
        text=message.text("text", allow_empty=True),
        provider_message_id=message.text("id"),
        in_reply_to=message.optional_text("in_reply_to"),
    )


class _Fields:
    """One JSON object being read; every error names the event kind and the field."""

    def __init__(self, data: object, where: str, prefix: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: {prefix.rstrip('.') or 'payload'} must be an object")
        self.data: Mapping[str, Any] = data
        self._where = where
        self._prefix = prefix

    def _missing(self, name: str) -> ValueError:
        return ValueError(f"{self._where}: missing field '{self._prefix}{name}'")

    def _invalid(self, name: str, expected: str) -> ValueError:
        value = self.data.get(name)
        return ValueError(
            f"{self._where}: field '{self._prefix}{name}' must be {expected}, got {value!r}"
        )

    def text(self, name: str, *, allow_empty: bool = False) -> str:
        if self.data.get(name) is None:
            raise self._missing(name)
        value = self.optional_text(name)
        if value is None or (not value and not allow_empty):
            raise self._invalid(name, "a non-empty string")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None or isinstance(value, str):
            return value
        raise self._invalid(name, "a string")

    def choice(self, name: str, allowed: Sequence[str], default: str | None = None) -> str:
        if self.data.get(name) is None and default is not None:
            return default
        value = self.text(name)
        if value not in allowed:
            raise self._invalid(name, "one of " + ", ".join(allowed))
        return value

    def time(self, name: str) -> datetime:
        value = self.optional_time(name)
        if value is None:
            raise self._missing(name)
        return value

    def optional_time(self, name: str) -> datetime | None:
        value = self.optional_text(name)
        if value is None:
            return None
        try:
            return _as_utc(datetime.fromisoformat(value))
        except ValueError:
            raise self._invalid(name, "an ISO 8601 timestamp") from None

    def optional_number(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._invalid(name, "a number")
        return float(value)

    def optional_int(self, name: str) -> int | None:
        value = self.optional_number(name)
        if value is None:
            return None
        if not value.is_integer():
            raise self._invalid(name, "a whole number")
        return int(value)

    def optional_flag(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None or isinstance(value, bool):
            return value
        raise self._invalid(name, "true or false")

    def flag(self, name: str) -> bool:
        return self.optional_flag(name) or False

    def optional_object(self, name: str) -> Mapping[str, Any] | None:
        value = self.data.get(name)
        if value is None or isinstance(value, Mapping):
            return value
        raise self._invalid(name, "an object")

    def string_map(self, name: str) -> dict[str, str]:
        value = self.optional_object(name) or {}
        return {str(key): str(item) for key, item in value.items()}

    def nested(self, name: str, prefix: str = "") -> _Fields:
        value = self.data.get(name)
        if value is None:
            raise self._missing(name)
        if not isinstance(value, Mapping):
            raise self._invalid(name, "an object")
        return _Fields(value, self._where, prefix)


# --------------------------------------------------------------------------- time helpers


def _as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; everything leaves as aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    return _as_utc(value).isoformat()


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else _iso(value)


def _time_or_none(value: Any) -> datetime | None:
    return None if value is None else _as_utc(datetime.fromisoformat(str(value)))


def _status_time(record: CallRecord) -> datetime:
    """When the call reached its current status (the event's occurred_at)."""
    moments = (record.ended_at, record.answered_at, record.ringing_at, record.created_at)
    for moment in moments:
        if moment is not None:
            return moment
    raise ValueError(f"call {record.id}: no timestamp to date its {record.status} event")


def _draw_seconds(rng: random.Random, bounds: Bounds) -> float:
    # Milliseconds are enough and keep stored timestamps short.
    return round(rng.uniform(*bounds), 3)


def _after(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _weighted(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    """One key of ``weights``, chosen with probability proportional to its value."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# --------------------------------------------------------------------------- call plans


@dataclass(frozen=True)
class _CallPlan:
    """A call's whole simulated life, decided at placement."""

    final: CallRecord
    connected_at: datetime | None  # when a person or a machine picked up

    def placement_record(self) -> CallRecord:
        """The record as the provider answers POST /v1/calls: only who, when, queued."""
        final = self.final
        return CallRecord(
            id=final.id,
            status=ProviderCallStatus.QUEUED,
            to=final.to,
            from_number=final.from_number,
            agent_id=final.agent_id,
            direction=final.direction,
            created_at=final.created_at,
            metadata=final.metadata,
        )

    def record_at(self, now: datetime) -> CallRecord:
        """The record as of ``now``: queued, ringing, in_progress, then the final one."""
        final = self.final
        if final.ended_at is not None and now >= final.ended_at:
            return final
        record = self.placement_record()
        if final.ringing_at is not None and now >= final.ringing_at:
            record = _with(record, status=ProviderCallStatus.RINGING, ringing_at=final.ringing_at)
        if self.connected_at is not None and now >= self.connected_at:
            record = _with(record, status=ProviderCallStatus.IN_PROGRESS)
            record = _with(record, answered_at=final.answered_at)
        return record

    def to_json(self) -> str:
        final = call_record_to_payload(self.final)
        return json.dumps({"record": final, "connected_at": _iso_or_none(self.connected_at)})

    @classmethod
    def from_json(cls, text: str) -> _CallPlan:
        stored = json.loads(text)
        final = call_record_from_payload(stored["record"])
        return cls(final=final, connected_at=_time_or_none(stored["connected_at"]))


def _with(record: CallRecord, **changes: Any) -> CallRecord:
    return replace(record, **changes)


class _Billing(NamedTuple):
    duration_seconds: float
    billable_seconds: int
    cost_millicents: int


def _bill(
    profile: SimulationProfile, created: datetime, connected: datetime | None, ended: datetime
) -> _Billing:
    """Total time on the line; connected time is billed per started minute."""
    duration = round((ended - created).total_seconds(), 3)
    billable = 0 if connected is None else math.ceil((ended - connected).total_seconds())
    cost = math.ceil(billable / 60) * profile.cost_per_minute_millicents
    return _Billing(duration, billable, cost)


def _draw_call_plan(
    profile: SimulationProfile, request: PlaceCallRequest, call_id: str, placed_at: datetime
) -> _CallPlan:
    """Decide the call's outcome and timeline from (seed, idempotency key) alone."""
    rng = random.Random(f"{profile.seed}:{request.idempotency_key}")
    # The outcome is the first draw, so timing knobs never change who answers.
    outcome: Outcome = _weighted(rng, profile.outcome_weights())
    placed = CallRecord(
        id=call_id,
        status=ProviderCallStatus.QUEUED,
        to=request.to,
        from_number=request.from_number or DEFAULT_FROM_NUMBER,
        agent_id=request.agent_id,
        created_at=placed_at,
        metadata=dict(request.metadata),
    )
    return _PLAN_BUILDERS[outcome](rng, profile, placed)


def _plan_answered(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> _CallPlan:
    created = _created(placed)
    ringing_at = _after(created, _draw_seconds(rng, profile.ringing_after_seconds))
    answered_at = _after(ringing_at, _draw_seconds(rng, profile.ring_seconds))
    talk_seconds = _draw_seconds(rng, profile.answered_seconds)
    ended_at = _after(answered_at, talk_seconds)
    analysis = _draw_analysis(rng, profile, talk_seconds)
    final = _with(
        placed,
        status=ProviderCallStatus.COMPLETED,
        ringing_at=ringing_at,
        answered_at=answered_at,
        ended_at=ended_at,
        hangup_reason=rng.choice(("agent_hangup", "customer_hangup")),
        extraction={"status": "completed", "data": _extraction_data(analysis)},
        extraction_status="completed",
        analysis=analysis,
        **_bill(profile, created, answered_at, ended_at)._asdict(),
    )
    return _CallPlan(final=final, connected_at=answered_at)


def _plan_voicemail(
    rng: random.Random, profile: SimulationProfile, placed: CallRecord
) -> _CallPlan:
    # A machine picks up: the provider reports "completed" with voicemail set, and
    # bills the message; answered_at stays empty because no person answered.
    created = _created(placed)
    ringing_at = _after(created, _draw_seconds(rng, profile.ringing_after_seconds))
    machine_at = _after(ringing_at, _draw_seconds(rng, profile.ring_seconds))
    ended_at = _after(machine_at, _draw_seconds(rng, profile.voicemail_seconds))
    final = _with(
        placed,
        status=ProviderCallStatus.COMPLETED,
        ringing_at=ringing_at,
        ended_at=ended_at,
        voicemail=True,
        hangup_reason="voicemail",
        **_bill(profile, created, machine_at, ended_at)._asdict(),
    )
    return _CallPlan(final=final, connected_at=machine_at)


def _plan_no_answer(
    rng: random.Random, profile: SimulationProfile, placed: CallRecord
) -> _CallPlan:
    created = _created(placed)
    ringing_at = _after(created, _draw_seconds(rng, profile.ringing_after_seconds))
    ended_at = _after(ringing_at, _draw_seconds(rng, profile.ring_seconds))
    final = _with(
        placed,
        status=ProviderCallStatus.NO_ANSWER,
        ringing_at=ringing_at,
        ended_at=ended_at,
        hangup_reason="no_answer",
        **_bill(profile, created, None, ended_at)._asdict(),
    )
    return _CallPlan(final=final, connected_at=None)


def _plan_busy(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> _CallPlan:
    created = _created(placed)
    ringing_at = _after(created, _draw_seconds(rng, profile.ringing_after_seconds))
    ended_at = _after(ringing_at, _draw_seconds(rng, _BUSY_TONE_SECONDS))
    final = _with(
        placed,
        status=ProviderCallStatus.BUSY,
        ringing_at=ringing_at,
        ended_at=ended_at,
        hangup_reason="busy",
        **_bill(profile, created, None, ended_at)._asdict(),
    )
    return _CallPlan(final=final, connected_at=None)


def _plan_failed(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> _CallPlan:
    # A failed call never rings: the network refuses it during setup.
    created = _created(placed)
    ended_at = _after(created, _draw_seconds(rng, profile.ringing_after_seconds))
    code = rng.choice(sorted(_FAILURE_CODES))
    final = _with(
        placed,
        status=ProviderCallStatus.FAILED,
        ended_at=ended_at,
        provider_error_code=code,
        error_message=_FAILURE_CODES[code],
        hangup_reason="error",
        **_bill(profile, created, None, ended_at)._asdict(),
    )
    return _CallPlan(final=final, connected_at=None)


_PlanBuilder = Callable[[random.Random, SimulationProfile, CallRecord], _CallPlan]
_PLAN_BUILDERS: Final[dict[Outcome, _PlanBuilder]] = {
    Outcome.ANSWERED: _plan_answered,
    Outcome.VOICEMAIL: _plan_voicemail,
    Outcome.NO_ANSWER: _plan_no_answer,
    Outcome.BUSY: _plan_busy,
    Outcome.FAILED: _plan_failed,
}


def _created(record: CallRecord) -> datetime:
    if record.created_at is None:
        raise ValueError(f"call {record.id}: created_at is required to plan a call")
    return record.created_at


_SUMMARIES: Final[dict[AiLabel, tuple[str, str, str, str]]] = {
    # label: (summary title, transcript summary, call_successful, goal_result)
    AiLabel.POSITIVE: (
        "Customer agreed",
        "The customer confirmed the details and agreed to the proposal.",
        "success",
        "achieved",
    ),
    AiLabel.NEUTRAL: (
        "Customer undecided",
        "The customer listened but asked for more time before deciding.",
        "success",
        "partially_achieved",
    ),
    AiLabel.NEGATIVE: (
        "Customer declined",
        "The customer was not interested and asked not to proceed.",
        "failure",
        "not_achieved",
    ),
}
# How often each label leaves work for a person: (follow-up rate, escalation rate).
_FOLLOW_UP_RATES: Final[dict[AiLabel, tuple[float, float]]] = {
    AiLabel.POSITIVE: (0.3, 0.0),
    AiLabel.NEUTRAL: (0.6, 0.05),
    AiLabel.NEGATIVE: (0.2, 0.3),
}


def _draw_analysis(
    rng: random.Random, profile: SimulationProfile, talk_seconds: float
) -> CallAnalysis:
    label: AiLabel = _weighted(rng, profile.label_weights())
    score = round(rng.uniform(*profile.score_range(label)), 2)
    title, summary, successful, goal_result = _SUMMARIES[label]
    follow_up_rate, escalation_rate = _FOLLOW_UP_RATES[label]
    follow_up = rng.random() < follow_up_rate
    escalation = rng.random() < escalation_rate
    return CallAnalysis(
        summary_title=title,
        transcript_summary=summary,
        call_successful=successful,
        goal_result=goal_result,
        goal_rationale=f"Simulated evaluation scored the conversation {score:.2f}.",
        goal_score=score,
        sentiment=str(label),
        sentiment_rationale=f"The customer sounded {label} throughout the call.",
        follow_up_required=follow_up,
        follow_up_rationale="The customer asked to be called again." if follow_up else None,
        escalation_required=escalation,
        escalation_rationale="The customer asked for a manager." if escalation else None,
        messages_count=2 + int(talk_seconds // 10),
    )


def _extraction_data(analysis: CallAnalysis) -> dict[str, Any]:
    return {
        "interested": analysis.sentiment == AiLabel.POSITIVE,
        "callback_requested": bool(analysis.follow_up_required),
        "sentiment": analysis.sentiment,
    }


class _Faults(NamedTuple):
    duplicate: bool
    duplicate_delay_seconds: float
    reorder: bool


def _draw_faults(profile: SimulationProfile, key: str) -> _Faults:
    # Their own generator, so switching a knob on never changes any outcome.
    rng = random.Random(f"{profile.seed}:{key}:faults")
    duplicate = rng.random() < profile.duplicate_event_rate
    delay = _draw_seconds(rng, _DUPLICATE_DELAY_SECONDS)
    return _Faults(duplicate, delay, rng.random() < profile.reorder_rate)


# --------------------------------------------------------------------------- scheduling


class _Scheduled(NamedTuple):
    """One delivery of an event: a unique token, its due time and its webhook body."""

    token: str
    due: datetime
    body: str


def _scheduled(event: ProviderEvent, due: datetime, copy: int = 0) -> _Scheduled:
    # The token differs per copy so a duplicate is a second sorted-set member.
    return _Scheduled(f"{event.event_id}#{copy}", due, json.dumps(event_payload(event)))


def _with_faults(deliveries: list[_Scheduled], faults: _Faults) -> list[_Scheduled]:
    """Append a second delivery of the last event when the duplicate knob fired."""
    if not faults.duplicate:
        return deliveries
    last = max(deliveries, key=lambda delivery: delivery.due)
    token = last.token.rsplit("#", 1)[0] + "#1"
    again = _after(last.due, faults.duplicate_delay_seconds)
    return [*deliveries, _Scheduled(token, again, last.body)]


def _call_deliveries(plan: _CallPlan, faults: _Faults) -> list[_Scheduled]:
    """The ringing event at ringing time and the final one at the end (or reordered)."""
    ended_at = plan.final.ended_at
    if ended_at is None:
        raise ValueError(f"call {plan.final.id}: a planned call must end")
    deliveries = [_scheduled(call_status_event(plan.final), ended_at)]
    ringing_at = plan.final.ringing_at
    if ringing_at is not None:
        ringing_due = _after(ended_at, 1.0) if faults.reorder else ringing_at
        ringing = call_status_event(plan.record_at(ringing_at))
        deliveries.insert(0, _scheduled(ringing, ringing_due))
    return _with_faults(deliveries, faults)


# --------------------------------------------------------------------------- redis state

# Create an object once per idempotency key, with its log entry and events, in one
# atomic step: a racing second request sees the first one's id and creates nothing.
# KEYS: idem, record, log, events, bodies. ARGV: id, record, log entry, then
# (token, score, body) triples.
_CREATE_ONCE_LUA: Final = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[3])
for i = 4, #ARGV, 3 do
  redis.call('ZADD', KEYS[4], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[5], ARGV[i], ARGV[i + 2])
end
return ARGV[1]
"""

# Take the due deliveries: ZRANGEBYSCORE and ZREM in one script, so two workers
# popping at the same moment never both get an event. KEYS: events, bodies.
# ARGV: now (epoch seconds), limit.
_POP_DUE_LUA: Final = """
local tokens = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local bodies = {}
for _, token in ipairs(tokens) do
  redis.call('ZREM', KEYS[1], token)
  bodies[#bodies + 1] = redis.call('HGET', KEYS[2], token)
  redis.call('HDEL', KEYS[2], token)
end
return bodies
"""


class _SimulatorState:
    """The simulator's Redis keys and scripts under one namespace."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.redis = client
        self.prefix = f"sim:{namespace}:"
        self.events_key = self.key("events")
        self.bodies_key = self.key("event_bodies")
        self._create_once = client.register_script(_CREATE_ONCE_LUA)
        self._pop_due = client.register_script(_POP_DUE_LUA)

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def create_once(
        self,
        keys: tuple[str, str, str],
        object_id: str,
        record_json: str,
        log_entry: Mapping[str, Any],
        deliveries: Sequence[_Scheduled],
        *,
        client: redis.client.Pipeline | None = None,
    ) -> str:
        """Store a new object unless its idempotency key has one; return the key's id.

        On a pipeline (``client``) the script is only queued: its answer comes from
        the pipeline's ``execute()`` and the return value here means nothing.
        """
        args: list[str | float] = [object_id, record_json, json.dumps(log_entry)]
        for delivery in deliveries:
            args += [delivery.token, delivery.due.timestamp(), delivery.body]
        script_keys = [*keys, self.events_key, self.bodies_key]
        return str(self._create_once(keys=script_keys, args=args, client=client))

    def pop_due(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        keys = [self.events_key, self.bodies_key]
        bodies = self._pop_due(keys=keys, args=[_as_utc(now).timestamp(), limit])
        return [cast(dict[str, Any], json.loads(body)) for body in bodies if body is not None]

    def pending(self) -> int:
        return int(self.redis.zcard(self.events_key))

    def read_log(self, name: str) -> list[dict[str, Any]]:
        entries = self.redis.lrange(self.key(name), 0, -1)
        return [cast(dict[str, Any], json.loads(entry)) for entry in entries]

    def next_try(self, idempotency_key: str) -> int:
        return int(self.redis.incr(self.key(f"tries:{idempotency_key}")))

    def read(self, name: str) -> str | None:
        value = self.redis.get(self.key(name))
        return None if value is None else str(value)

    def clear(self) -> int:
        """Delete every key of this namespace (a fresh demo run); returns how many."""
        names = list(self.redis.scan_iter(match=f"{self.prefix}*", count=500))
        return int(self.redis.delete(*names)) if names else 0


# --------------------------------------------------------------------------- providers


class _SimulatedBase:
    """What both simulated providers share: the clock, the profile and the event queue."""

    name = PROVIDER_NAME

    def __init__(
        self,
        redis: redis.Redis,
        clock: Clock,
        profile: SimulationProfile,
        namespace: str = "default",
    ) -> None:
        self._state = _SimulatorState(redis, namespace)
        self._clock = clock
        self.profile = profile
        self.namespace = namespace

    def _now(self) -> datetime:
        return _as_utc(self._clock())

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """Turn a webhook body into a ProviderEvent; raise ValueError naming the bad field."""
        return parse_event_payload(payload, provider=self.name)

    def pop_due_events(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Remove and return the webhook bodies due by ``now``, oldest first, each once."""
        return self._state.pop_due(now, limit)

    def pending_event_count(self) -> int:
        return self._state.pending()

    def clear(self) -> int:
        """Forget every call, message and pending event of this namespace."""
        return self._state.clear()


class SimulatedVoiceProvider(_SimulatedBase):
    """A voice-AI provider (seed 004) whose calls play out on the injected clock."""

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        """Place a call once per idempotency key; a repeat returns the same call."""
        self._fail_transiently_sometimes(request.idempotency_key)
        _validate_call_request(request)
        plan = _draw_call_plan(self.profile, request, _new_id("call"), self._now())
        deliveries = _call_deliveries(plan, _draw_faults(self.profile, request.idempotency_key))
        call_id = self._state.create_once(
            self._storage_keys(request.idempotency_key, plan.final.id),
            plan.final.id,
            plan.to_json(),
            _ledger_entry(request, plan.final),
            deliveries,
        )
        if call_id == plan.final.id:
            return plan.placement_record()
        return self._load_plan(call_id).placement_record()  # an earlier request's call

    def place_calls(
        self, requests: Sequence[PlaceCallRequest], gate: Gate | None = None
    ) -> list[Placement]:
        """Place many calls with one Redis round trip for all of them (same rules as one).

        The round trip is the moment they are all sent; ``gate`` is asked for each while
        the pipeline is built, just before it (no I/O in between).
        """
        answers: list[Placement | None] = []
        staged: list[tuple[int, _CallPlan]] = []
        with self._state.redis.pipeline(transaction=False) as pipe:
            for request in requests:
                if gate is not None and not gate(request):
                    answers.append(NotSent(request.idempotency_key))
                    continue
                try:
                    plan = self._stage(request, pipe)
                except (TransientProviderError, PermanentProviderError) as exc:
                    answers.append(exc)
                    continue
                staged.append((len(answers), plan))
                answers.append(None)
            call_ids = pipe.execute()
        for (index, plan), call_id in zip(staged, call_ids, strict=True):
            answers[index] = self._placed(plan, str(call_id))
        return [answer for answer in answers if answer is not None]

    def _stage(self, request: PlaceCallRequest, pipe: redis.client.Pipeline) -> _CallPlan:
        """Check and draw a call, and queue its create-once script on ``pipe``."""
        self._fail_transiently_sometimes(request.idempotency_key)
        _validate_call_request(request)
        plan = _draw_call_plan(self.profile, request, _new_id("call"), self._now())
        deliveries = _call_deliveries(plan, _draw_faults(self.profile, request.idempotency_key))
        self._state.create_once(
            self._storage_keys(request.idempotency_key, plan.final.id),
            plan.final.id,
            plan.to_json(),
            _ledger_entry(request, plan.final),
            deliveries,
            client=pipe,
        )
        return plan

    def _placed(self, plan: _CallPlan, call_id: str) -> CallRecord:
        if call_id == plan.final.id:
            return plan.placement_record()
        return self._load_plan(call_id).placement_record()  # an earlier request's call

    def get_call(self, call_id: str) -> CallRecord:
        """The call as of the clock's now."""
        return self._load_plan(call_id).record_at(self._now())

    def ledger(self) -> list[dict[str, Any]]:
        """Every call placed, in order: {call_id, idempotency_key, to, from_number, placed_at}."""
        return self._state.read_log("ledger")

    def ledger_count_by_key(self) -> dict[str, int]:
        return dict(Counter(str(entry["idempotency_key"]) for entry in self.ledger()))

    def _storage_keys(self, idempotency_key: str, call_id: str) -> tuple[str, str, str]:
        key = self._state.key
        return key(f"idem:{idempotency_key}"), key(f"call:{call_id}"), key("ledger")

    def _load_plan(self, call_id: str) -> _CallPlan:
        stored = self._state.read(f"call:{call_id}")
        if stored is None:
            raise PermanentProviderError(f"call {call_id} not found", code="not_found")
        return _CallPlan.from_json(stored)

    def _fail_transiently_sometimes(self, idempotency_key: str) -> None:
        rate = self.profile.transient_error_rate
        if rate <= 0:
            return  # no counter round trip when the knob is off
        attempt = self._state.next_try(idempotency_key)
        rng = random.Random(f"{self.profile.seed}:{idempotency_key}:try:{attempt}")
        if rng.random() < rate:
            raise TransientProviderError(
                f"simulated provider timeout (try {attempt})", retry_after_seconds=1.0
            )


def _validate_call_request(request: PlaceCallRequest) -> None:
    if not request.idempotency_key:
        raise PermanentProviderError("idempotency_key is required", code="validation_error")
    if not request.agent_id:
        raise PermanentProviderError("agent_id is required", code="validation_error")
    if _is_unreachable_number(request.to):
        raise PermanentProviderError(f"invalid number {request.to!r}", code="invalid_number")


@lru_cache(maxsize=65_536)  # a retried contact is parsed once (~25 us a parse)
def _is_unreachable_number(number: str) -> bool:
    """Unparseable numbers, and those whose national part ends in 0000, are invalid here."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return True
    return str(parsed.national_number).endswith("0000")


def _ledger_entry(request: PlaceCallRequest, record: CallRecord) -> dict[str, Any]:
    return {
        "call_id": record.id,
        "idempotency_key": request.idempotency_key,
        "to": record.to,
        "from_number": record.from_number,
        "placed_at": _iso_or_none(record.created_at),
    }


# --------------------------------------------------------------------------- messages


class _MessagePlan(NamedTuple):
    delivered_at: datetime
    reply: InboundMessage | None
    reply_at: datetime | None


def _draw_message_plan(
    profile: SimulationProfile, request: SendMessageRequest, message_id: str, sent_at: datetime
) -> _MessagePlan:
    """Delivery time and, for WhatsApp, whether and how the customer replies."""
    rng = random.Random(f"{profile.seed}:message:{request.idempotency_key}")
    delivered_at = _after(sent_at, _draw_seconds(rng, profile.delivery_delay_seconds))
    replies = rng.random() < profile.whatsapp_reply_rate
    says_stop = rng.random() < profile.stop_reply_rate
    text = STOP_REPLY if says_stop else rng.choice((CALLBACK_REPLY, THANKS_REPLY))
    reply_at = _after(delivered_at, _draw_seconds(rng, profile.reply_delay_seconds))
    if request.channel != Channel.WHATSAPP or not replies:
        return _MessagePlan(delivered_at, None, None)
    reply = InboundMessage(
        channel=Channel.WHATSAPP,
        from_address=request.to,
        text=text,
        provider_message_id=_new_id("inb"),
        in_reply_to=message_id,
    )
    return _MessagePlan(delivered_at, reply, reply_at)


def _message_deliveries(message_id: str, plan: _MessagePlan, faults: _Faults) -> list[_Scheduled]:
    delivered = MessageStatusUpdate(provider_message_id=message_id, status="delivered")
    deliveries = [_scheduled(message_status_event(delivered, plan.delivered_at), plan.delivered_at)]
    if plan.reply is not None and plan.reply_at is not None:
        inbound = inbound_message_event(plan.reply, plan.reply_at)
        deliveries.append(_scheduled(inbound, plan.reply_at))
    # Reordering means nothing for one-directional message events; duplicates do.
    return _with_faults(deliveries, faults)


class SimulatedMessageProvider(_SimulatedBase):
    """A WhatsApp and email sender: delivers shortly, and some WhatsApp customers reply."""

    def send(self, request: SendMessageRequest) -> SendResult:
        """Send once per idempotency key; a repeat returns the first send's result."""
        _validate_message_request(request)
        now = self._now()
        message_id = _new_id("msg")
        plan = _draw_message_plan(self.profile, request, message_id, now)
        faults = _draw_faults(self.profile, f"message:{request.idempotency_key}")
        entry = _sent_entry(request, message_id, now)
        stored_id = self._state.create_once(
            self._storage_keys(request.idempotency_key, message_id),
            message_id,
            json.dumps(entry),
            entry,
            _message_deliveries(message_id, plan, faults),
        )
        return SendResult(provider_message_id=stored_id, status="sent")

    def sent_messages(self) -> list[dict[str, Any]]:
        """Every message sent, in order (one per idempotency key)."""
        return self._state.read_log("messages")

    def _storage_keys(self, idempotency_key: str, message_id: str) -> tuple[str, str, str]:
        key = self._state.key
        return key(f"msgidem:{idempotency_key}"), key(f"message:{message_id}"), key("messages")


def _validate_message_request(request: SendMessageRequest) -> None:
    if not request.idempotency_key:
        raise PermanentProviderError("idempotency_key is required", code="validation_error")
    if request.channel not in (Channel.WHATSAPP, Channel.EMAIL):
        raise PermanentProviderError(
            f"unsupported channel {request.channel!r}", code="unsupported_channel"
        )
    recipient = request.to.strip()
    if not recipient or (request.channel == Channel.EMAIL and "@" not in recipient):
        raise PermanentProviderError(f"invalid recipient {request.to!r}", code="invalid_recipient")


def _sent_entry(request: SendMessageRequest, message_id: str, sent_at: datetime) -> dict[str, Any]:
    return {
        "provider_message_id": message_id,
        "idempotency_key": request.idempotency_key,
        "channel": request.channel,
        "to": request.to,
        "sender": request.sender,
        "subject": request.subject,
        "body": request.body,
        "metadata": dict(request.metadata),
        "sent_at": _iso(sent_at),
    }


def build_simulated_providers(
    redis_url: str,
    clock: Clock,
    profile: SimulationProfile,
    namespace: str = "default",
) -> tuple[SimulatedVoiceProvider, SimulatedMessageProvider]:
    """Both simulated providers on one Redis client, sharing one namespace and event queue."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    return (
        SimulatedVoiceProvider(client, clock, profile, namespace),
        SimulatedMessageProvider(client, clock, profile, namespace),
    )
