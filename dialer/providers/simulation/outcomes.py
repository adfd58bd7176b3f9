"""Outcome drawing: everything a simulated call or message will do, decided at once.

A call's outcome, timeline, billing and analysis are drawn when it is placed from
``random.Random(f"{seed}:{idempotency_key}")``, so a run is reproducible and a
retried request can never change the outcome; fault knobs (duplicate, reordered
events) and message replies draw from their own generators, so switching a knob
never changes who answers. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Final, NamedTuple

import phonenumbers

from dialer.policies.vocabulary import AiLabel, Channel, Outcome, ProviderCallStatus
from dialer.providers.base import (
    CallAnalysis,
    CallRecord,
    InboundMessage,
    PlaceCallRequest,
    SendMessageRequest,
)
from dialer.providers.events import (
    call_record_from_payload,
    call_record_to_payload,
    iso_or_none,
    time_or_none,
)
from dialer.providers.simulation.profile import Bounds, SimulationProfile

DEFAULT_FROM_NUMBER: Final = "+15550100001"
CALLBACK_REPLY: Final = "Yes, please call me back"
THANKS_REPLY: Final = "Thanks"
STOP_REPLY: Final = "STOP"

# A busy line answers with a busy tone within a few seconds of ringing.
_BUSY_TONE_SECONDS: Final[Bounds] = (1.0, 4.0)
# A duplicate delivery arrives shortly after the original, like a webhook retry.
_DUPLICATE_DELAY_SECONDS: Final[Bounds] = (0.5, 5.0)
_FAILURE_CODES: Final = {
    "carrier_unavailable": "The carrier could not route the call",
    "network_error": "The telephony network dropped the call setup",
    "call_rejected": "The destination network rejected the call",
}


@dataclass(frozen=True)
class CallPlan:
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
        return json.dumps({"record": final, "connected_at": iso_or_none(self.connected_at)})

    @classmethod
    def from_json(cls, text: str) -> CallPlan:
        stored = json.loads(text)
        final = call_record_from_payload(stored["record"])
        return cls(final=final, connected_at=time_or_none(stored["connected_at"]))


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


def draw_call_plan(
    profile: SimulationProfile, request: PlaceCallRequest, call_id: str, placed_at: datetime
) -> CallPlan:
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


def _plan_answered(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> CallPlan:
    created = _created(placed)
    ringing_at = seconds_after(created, draw_seconds(rng, profile.ringing_after_seconds))
    answered_at = seconds_after(ringing_at, draw_seconds(rng, profile.ring_seconds))
    talk_seconds = draw_seconds(rng, profile.answered_seconds)
    ended_at = seconds_after(answered_at, talk_seconds)
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
    return CallPlan(final=final, connected_at=answered_at)


def _plan_voicemail(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> CallPlan:
    # A machine picks up: the provider reports "completed" with voicemail set, and
    # bills the message; answered_at stays empty because no person answered.
    created = _created(placed)
    ringing_at = seconds_after(created, draw_seconds(rng, profile.ringing_after_seconds))
    machine_at = seconds_after(ringing_at, draw_seconds(rng, profile.ring_seconds))
    ended_at = seconds_after(machine_at, draw_seconds(rng, profile.voicemail_seconds))
    final = _with(
        placed,
        status=ProviderCallStatus.COMPLETED,
        ringing_at=ringing_at,
        ended_at=ended_at,
        voicemail=True,
        hangup_reason="voicemail",
        **_bill(profile, created, machine_at, ended_at)._asdict(),
    )
    return CallPlan(final=final, connected_at=machine_at)


def _plan_no_answer(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> CallPlan:
    created = _created(placed)
    ringing_at = seconds_after(created, draw_seconds(rng, profile.ringing_after_seconds))
    ended_at = seconds_after(ringing_at, draw_seconds(rng, profile.ring_seconds))
    final = _with(
        placed,
        status=ProviderCallStatus.NO_ANSWER,
        ringing_at=ringing_at,
        ended_at=ended_at,
        hangup_reason="no_answer",
        **_bill(profile, created, None, ended_at)._asdict(),
    )
    return CallPlan(final=final, connected_at=None)


def _plan_busy(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> CallPlan:
    created = _created(placed)
    ringing_at = seconds_after(created, draw_seconds(rng, profile.ringing_after_seconds))
    ended_at = seconds_after(ringing_at, draw_seconds(rng, _BUSY_TONE_SECONDS))
    final = _with(
        placed,
        status=ProviderCallStatus.BUSY,
        ringing_at=ringing_at,
        ended_at=ended_at,
        hangup_reason="busy",
        **_bill(profile, created, None, ended_at)._asdict(),
    )
    return CallPlan(final=final, connected_at=None)


def _plan_failed(rng: random.Random, profile: SimulationProfile, placed: CallRecord) -> CallPlan:
    # A failed call never rings: the network refuses it during setup.
    created = _created(placed)
    ended_at = seconds_after(created, draw_seconds(rng, profile.ringing_after_seconds))
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
    return CallPlan(final=final, connected_at=None)


_PlanBuilder = Callable[[random.Random, SimulationProfile, CallRecord], CallPlan]
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


class EventFaults(NamedTuple):
    duplicate: bool
    duplicate_delay_seconds: float
    reorder: bool


def draw_event_faults(profile: SimulationProfile, key: str) -> EventFaults:
    # Their own generator, so switching a knob on never changes any outcome.
    rng = random.Random(f"{profile.seed}:{key}:faults")
    duplicate = rng.random() < profile.duplicate_event_rate
    delay = draw_seconds(rng, _DUPLICATE_DELAY_SECONDS)
    return EventFaults(duplicate, delay, rng.random() < profile.reorder_rate)


# --------------------------------------------------------------------------- messages


class MessagePlan(NamedTuple):
    delivered_at: datetime
    reply: InboundMessage | None
    reply_at: datetime | None


def draw_message_plan(
    profile: SimulationProfile, request: SendMessageRequest, message_id: str, sent_at: datetime
) -> MessagePlan:
    """Delivery time and, for WhatsApp, whether and how the customer replies."""
    rng = random.Random(f"{profile.seed}:message:{request.idempotency_key}")
    delivered_at = seconds_after(sent_at, draw_seconds(rng, profile.delivery_delay_seconds))
    replies = rng.random() < profile.whatsapp_reply_rate
    says_stop = rng.random() < profile.stop_reply_rate
    text = STOP_REPLY if says_stop else rng.choice((CALLBACK_REPLY, THANKS_REPLY))
    reply_at = seconds_after(delivered_at, draw_seconds(rng, profile.reply_delay_seconds))
    if request.channel != Channel.WHATSAPP or not replies:
        return MessagePlan(delivered_at, None, None)
    reply = InboundMessage(
        channel=Channel.WHATSAPP,
        from_address=request.to,
        text=text,
        provider_message_id=new_id("inb"),
        in_reply_to=message_id,
    )
    return MessagePlan(delivered_at, reply, reply_at)


@lru_cache(maxsize=65_536)  # a retried contact is parsed once (~25 us a parse)
def is_unreachable_number(number: str) -> bool:
    """Unparseable numbers, and those whose national part ends in 0000, are invalid here."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return True
    return str(parsed.national_number).endswith("0000")


# --------------------------------------------------------------------------- draws


def draw_seconds(rng: random.Random, bounds: Bounds) -> float:
    # Milliseconds are enough and keep stored timestamps short.
    return round(rng.uniform(*bounds), 3)


def seconds_after(moment: datetime, seconds: float) -> datetime:
    return moment + timedelta(seconds=seconds)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _weighted(rng: random.Random, weights: Mapping[Any, float]) -> Any:
    """One key of ``weights``, chosen with probability proportional to its value."""
    return rng.choices(list(weights), weights=list(weights.values()))[0]
