"""Provider adapter interfaces: voice calls (seed 004) and messages (WhatsApp, email).

Adapters speak the provider's language; the pipeline only sees these values.
A provider event, from a webhook or from the simulator, is parsed into a
ProviderEvent and enters through the same inbox (dialer.services.results).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast, runtime_checkable

from dialer.errors import DialerError


class ProviderError(DialerError):
    """The provider refused or failed the request."""


class TransientProviderError(ProviderError):
    """A temporary failure (timeout, 5xx, 429): the same request may be sent again."""

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float | None = None,
        kind: str = "transient",
        nothing_placed: bool = False,
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.kind = kind  # timeout, network, server_error, rate_limited: the metrics' reason
        # True only when the provider provably created no call (a 429 or 5xx answer, a
        # refused connection): then, and only then, failover may send the attempt to
        # another provider. A timeout after the request left may have placed one.
        self.nothing_placed = nothing_placed


class PermanentProviderError(ProviderError):
    """The request can never succeed as it is (invalid number, validation error)."""

    def __init__(self, message: str, *, code: str = "permanent") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PlaceCallRequest:
    """POST /v1/calls of seed 004, plus the idempotency key derived from the attempt."""

    idempotency_key: str
    agent_id: str
    to: str
    from_number: str | None = None
    instructions: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallAnalysis:
    """Post-call evaluation (seed 000 CallAttemptOut analysis fields)."""

    summary_title: str | None = None
    transcript_summary: str | None = None
    call_successful: str | None = None
    goal_result: str | None = None
    goal_rationale: str | None = None
    goal_score: float | None = None
    sentiment: str | None = None  # positive | negative | neutral: the AI objective's label
    sentiment_rationale: str | None = None
    follow_up_required: bool | None = None
    follow_up_rationale: str | None = None
    escalation_required: bool | None = None
    escalation_rationale: str | None = None
    messages_count: int = 0


@dataclass(frozen=True)
class CallRecord:
    """The provider's call record (seed 004 response fields)."""

    id: str
    status: str  # a ProviderCallStatus value
    to: str
    from_number: str | None = None
    agent_id: str | None = None
    direction: str = "outbound"
    created_at: datetime | None = None
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_seconds: float | None = None
    billable_seconds: int | None = None
    cost_millicents: int | None = None
    extraction: Mapping[str, Any] | None = None
    extraction_status: str | None = None
    extraction_error: str | None = None
    provider_error_code: str | None = None
    error_message: str | None = None
    hangup_reason: str | None = None
    voicemail: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)
    analysis: CallAnalysis | None = None


@dataclass(frozen=True)
class InboundMessage:
    """A message a customer sent us (a WhatsApp or SMS reply)."""

    channel: str  # whatsapp | sms
    from_address: str  # E.164
    text: str
    provider_message_id: str
    in_reply_to: str | None = None  # our provider_message_id, when the provider says
    opt_out: bool = False  # the provider recognised an opt-out (Twilio's OptOutType=STOP)


@dataclass(frozen=True)
class MessageStatusUpdate:
    provider_message_id: str
    status: str  # sent | delivered | read | failed
    error: str | None = None
    message_id: str | None = None  # our messages.id, when the provider echoes it (SendGrid)


@dataclass(frozen=True)
class ProviderEvent:
    """One event from a provider, normalised. Exactly one of the payload fields is set."""

    provider: str
    event_id: str
    kind: str  # call.status | message.inbound | message.status
    occurred_at: datetime
    call: CallRecord | None = None
    inbound: InboundMessage | None = None
    message_status: MessageStatusUpdate | None = None


@dataclass(frozen=True)
class SendMessageRequest:
    idempotency_key: str
    channel: str  # whatsapp | sms | email
    to: str
    body: str
    sender: str | None = None
    subject: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str  # queued | sent | delivered


class VoiceProvider(Protocol):
    """What the pipeline needs from a voice-AI provider."""

    name: str

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        """Place a call; the same idempotency key never places a second call."""
        ...

    def get_call(self, call_id: str) -> CallRecord:
        """The call record as the provider has it now (reconciliation)."""
        ...

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """Turn a webhook body into a ProviderEvent; raise ValueError naming the bad field."""
        ...


class FindsCalls(Protocol):
    """A provider whose calls can be found by our metadata (hosted adapters that can)."""

    can_find_by_metadata: bool

    def find_call(self, request: PlaceCallRequest, sent_after: datetime) -> CallRecord | None:
        """The call placed for ``request`` since ``sent_after``, or None if there is none."""
        ...


def call_finder(provider: VoiceProvider) -> FindsCalls | None:
    """The provider as a finder of calls by our metadata, or None where it cannot search."""
    if getattr(provider, "can_find_by_metadata", False) and hasattr(provider, "find_call"):
        return cast(FindsCalls, provider)
    return None


@dataclass(frozen=True)
class NotSent:
    """A request the gate held back: nothing was sent, the provider knows nothing of it."""

    idempotency_key: str


Placement = CallRecord | TransientProviderError | PermanentProviderError | NotSent
# Asked just before a request goes out: may it be sent now? (The clock moves while a
# batch is being sent, so a check made before the batch is not enough.)
Gate = Callable[[PlaceCallRequest], bool]


def place_calls(
    provider: VoiceProvider, requests: Sequence[PlaceCallRequest], gate: Gate | None = None
) -> list[Placement]:
    """Place many calls; each answer is the record, the refusal or NotSent, in request order.

    A provider may offer ``place_calls`` itself, to send a batch faster than one
    request at a time (the simulator pipelines its Redis work; the HTTP adapter
    overlaps its requests); it must ask ``gate`` as late as it can before each
    request leaves. Otherwise the calls are placed one by one, each gated first.
    """
    batch = getattr(provider, "place_calls", None)
    if batch is not None:
        return cast(list[Placement], batch(requests, gate))
    return [place_one(provider, request, gate) for request in requests]


def place_one(
    provider: VoiceProvider, request: PlaceCallRequest, gate: Gate | None = None
) -> Placement:
    if gate is not None and not gate(request):
        return NotSent(request.idempotency_key)
    try:
        return provider.place_call(request)
    except (TransientProviderError, PermanentProviderError) as exc:
        return exc


class MessageProvider(Protocol):
    """What the pipeline needs from a WhatsApp or email sender."""

    name: str

    def send(self, request: SendMessageRequest) -> SendResult:
        """Send; the same idempotency key never sends twice."""
        ...


@runtime_checkable
class MessageLookup(Protocol):
    """A message adapter that can be asked where a sent message is (Twilio's message
    fetch, the simulator). The WhatsApp Cloud API has none: its adapter does not
    implement this, and a message whose status webhooks were lost is marked unknown."""

    def message_status(self, channel: str, provider_message_id: str) -> MessageStatusUpdate | None:
        """The provider's status now; None if no adapter of ``channel`` can tell.
        PermanentProviderError: the provider has no such message."""
        ...
