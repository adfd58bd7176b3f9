"""The simulated voice-AI provider (seed 004) and WhatsApp/email sender.

Each request is checked, its whole future drawn (``outcomes``), and stored once per
idempotency key with the webhook bodies it will deliver (``deliveries``) in a
``SimulatorStore``: Redis when worker processes share one simulator, memory for a
single process. Time is the injected clock; nothing here sleeps.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from dialer.dependencies import Clock
from dialer.policies.vocabulary import Channel, MessageStatus
from dialer.providers.base import (
    CallRecord,
    Gate,
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
from dialer.providers.events import as_utc, iso, iso_or_none, parse_event_payload, time_or_none
from dialer.providers.simulation.deliveries import call_deliveries, message_deliveries
from dialer.providers.simulation.outcomes import (
    CallPlan,
    draw_call_plan,
    draw_event_faults,
    draw_message_plan,
    is_unreachable_number,
    new_id,
)
from dialer.providers.simulation.profile import SimulationProfile
from dialer.providers.simulation.store import (
    CALLS,
    MESSAGES,
    Creation,
    MemorySimulatorStore,
    RedisSimulatorStore,
    SimulatorStore,
)

PROVIDER_NAME: Final = "simulated"


class _SimulatedBase:
    """What both simulated providers share: the clock, the profile and the event queue."""

    name = PROVIDER_NAME

    def __init__(self, store: SimulatorStore, clock: Clock, profile: SimulationProfile) -> None:
        self._store = store
        self._clock = clock
        self.profile = profile

    def _now(self) -> datetime:
        return as_utc(self._clock())

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """Turn a webhook body into a ProviderEvent; raise ValueError naming the bad field."""
        return parse_event_payload(payload, provider=self.name)

    def pop_due_events(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Remove and return the webhook bodies due by ``now``, oldest first, each once."""
        return self._store.pop_due(now, limit)

    def pending_event_count(self) -> int:
        return self._store.pending()

    def clear(self) -> int:
        """Forget every call, message and pending event of this store."""
        return self._store.clear()


class SimulatedVoiceProvider(_SimulatedBase):
    """A voice-AI provider (seed 004) whose calls play out on the injected clock."""

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        """Place a call once per idempotency key; a repeat returns the same call."""
        plan, creation = self._draw(request)
        (call_id,) = self._store.create_many(CALLS, [creation])
        return self._placed(plan, call_id)

    def place_calls(
        self, requests: Sequence[PlaceCallRequest], gate: Gate | None = None
    ) -> list[Placement]:
        """Place many calls with one store round trip for all of them (same rules as one).

        The round trip is the moment they are all sent; ``gate`` is asked for each while
        the batch is drawn, just before it (no I/O in between).
        """
        answers: list[Placement | None] = []
        staged: list[tuple[int, CallPlan, Creation]] = []
        for request in requests:
            if gate is not None and not gate(request):
                answers.append(NotSent(request.idempotency_key))
                continue
            try:
                plan, creation = self._draw(request)
            except (TransientProviderError, PermanentProviderError) as exc:
                answers.append(exc)
                continue
            staged.append((len(answers), plan, creation))
            answers.append(None)
        call_ids = self._store.create_many(CALLS, [creation for _, _, creation in staged])
        for (index, plan, _), call_id in zip(staged, call_ids, strict=True):
            answers[index] = self._placed(plan, call_id)
        return [answer for answer in answers if answer is not None]

    def _draw(self, request: PlaceCallRequest) -> tuple[CallPlan, Creation]:
        """Check a request and draw its call: what the store creates unless the key has one."""
        self._fail_transiently_sometimes(request.idempotency_key)
        _validate_call_request(request)
        plan = draw_call_plan(self.profile, request, new_id("call"), self._now())
        faults = draw_event_faults(self.profile, request.idempotency_key)
        creation = Creation(
            idempotency_key=request.idempotency_key,
            object_id=plan.final.id,
            record_json=plan.to_json(),
            log_entry=_ledger_entry(request, plan.final),
            deliveries=call_deliveries(plan, faults),
        )
        return plan, creation

    def _placed(self, plan: CallPlan, call_id: str) -> CallRecord:
        if call_id == plan.final.id:
            return plan.placement_record()
        return self._load_plan(call_id).placement_record()  # an earlier request's call

    def get_call(self, call_id: str) -> CallRecord:
        """The call as of the clock's now."""
        return self._load_plan(call_id).record_at(self._now())

    def ledger(self) -> list[dict[str, Any]]:
        """Every call placed, in order: {call_id, idempotency_key, to, from_number, placed_at}."""
        return self._store.read_log(CALLS)

    def ledger_count_by_key(self) -> dict[str, int]:
        return dict(Counter(str(entry["idempotency_key"]) for entry in self.ledger()))

    def _load_plan(self, call_id: str) -> CallPlan:
        stored = self._store.read_record(CALLS, call_id)
        if stored is None:
            raise PermanentProviderError(f"call {call_id} not found", code="not_found")
        return CallPlan.from_json(stored)

    def _fail_transiently_sometimes(self, idempotency_key: str) -> None:
        rate = self.profile.transient_error_rate
        if rate <= 0:
            return  # no counter round trip when the knob is off
        attempt = self._store.next_try(idempotency_key)
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
    if is_unreachable_number(request.to):
        raise PermanentProviderError(f"invalid number {request.to!r}", code="invalid_number")


def _ledger_entry(request: PlaceCallRequest, record: CallRecord) -> dict[str, Any]:
    return {
        "call_id": record.id,
        "idempotency_key": request.idempotency_key,
        "to": record.to,
        "from_number": record.from_number,
        "placed_at": iso_or_none(record.created_at),
    }


class SimulatedMessageProvider(_SimulatedBase):
    """A WhatsApp and email sender: delivers shortly, and some WhatsApp customers reply."""

    def send(self, request: SendMessageRequest) -> SendResult:
        """Send once per idempotency key; a repeat returns the first send's result."""
        _validate_message_request(request)
        now = self._now()
        message_id = new_id("msg")
        plan = draw_message_plan(self.profile, request, message_id, now)
        faults = draw_event_faults(self.profile, f"message:{request.idempotency_key}")
        entry = _sent_entry(request, message_id, now)
        creation = Creation(
            idempotency_key=request.idempotency_key,
            object_id=message_id,
            # The record also keeps when the message is delivered, for message_status.
            record_json=json.dumps(entry | {"delivered_at": iso(plan.delivered_at)}),
            log_entry=entry,
            deliveries=message_deliveries(message_id, plan, faults),
        )
        (stored_id,) = self._store.create_many(MESSAGES, [creation])
        return SendResult(provider_message_id=stored_id, status="sent")

    def message_status(self, channel: str, provider_message_id: str) -> MessageStatusUpdate | None:
        """Where the message is as of the clock's now (a Twilio-style message fetch)."""
        stored = self._store.read_record(MESSAGES, provider_message_id)
        if stored is None:
            raise PermanentProviderError(
                f"message {provider_message_id} not found", code="not_found"
            )
        delivered_at = time_or_none(json.loads(stored).get("delivered_at"))
        delivered = delivered_at is not None and delivered_at <= self._now()
        status = MessageStatus.DELIVERED if delivered else MessageStatus.SENT
        return MessageStatusUpdate(provider_message_id=provider_message_id, status=status)

    def sent_messages(self) -> list[dict[str, Any]]:
        """Every message sent, in order (one per idempotency key)."""
        return self._store.read_log(MESSAGES)


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
        "sent_at": iso(sent_at),
    }


def build_simulated_providers(
    redis_url: str,
    clock: Clock,
    profile: SimulationProfile,
    namespace: str = "default",
) -> tuple[SimulatedVoiceProvider, SimulatedMessageProvider]:
    """Both simulated providers on one Redis client, sharing one namespace and event queue."""
    return simulated_providers(RedisSimulatorStore.from_url(redis_url, namespace), clock, profile)


def in_memory_providers(
    clock: Clock, profile: SimulationProfile
) -> tuple[SimulatedVoiceProvider, SimulatedMessageProvider]:
    """Both simulated providers on one fresh in-memory store: one process, no Redis."""
    return simulated_providers(MemorySimulatorStore(), clock, profile)


def simulated_providers(
    store: SimulatorStore, clock: Clock, profile: SimulationProfile
) -> tuple[SimulatedVoiceProvider, SimulatedMessageProvider]:
    return (
        SimulatedVoiceProvider(store, clock, profile),
        SimulatedMessageProvider(store, clock, profile),
    )
