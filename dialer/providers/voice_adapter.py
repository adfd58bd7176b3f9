"""What every hosted voice-AI adapter shares: one placement per key, even without a key.

Seed 004 honours an ``Idempotency-Key``; Vapi, Twilio and ElevenLabs honour none,
and Retell only for an hour. So an adapter never trusts a re-send to be harmless:

1. Just before sending, it claims the attempt's key in the placement journal
   (``dialer.providers.seen_once``: Redis for the fleet).
2. If the claim is already taken, an earlier try may have placed the call: the
   adapter looks the call up by our metadata (where the provider can) and returns
   it; if nothing is found it raises ``PlacementUncertain`` rather than send again.
3. If the answer is lost on the way back (read timeout, connection reset, 502/504:
   ``provider_http.AnswerLost``), it looks the call up a few times with short
   waits (the provider may still be creating it) and returns it when found, else
   raises ``PlacementUncertain``.
4. When we know nothing reached the provider (connect error, 429, 500/503, a 4xx),
   the claim is given back, so the usual retry sends the request once more.

``PlacementUncertain`` is a ``PermanentProviderError`` (code ``placement_uncertain``)
so that nothing retries it blind; dispatch holds such an attempt ``uncertain``
(``dialer.services.uncertain``): a webhook naming our attempt id, a later
``find_call`` or the deadline settles it, never a second request.
"""

from __future__ import annotations

import abc
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Final

import structlog

from dialer.clock import real_utcnow
from dialer.dependencies import Clock
from dialer.providers.base import (
    CallAnalysis,
    CallRecord,
    Gate,
    NotSent,
    PermanentProviderError,
    PlaceCallRequest,
    Placement,
    ProviderEvent,
    TransientProviderError,
)
from dialer.providers.provider_http import AnswerLost, ProviderHttp
from dialer.providers.seen_once import InMemorySeenOnce, SeenOnce

E164_PATTERN: Final = re.compile(r"\+[1-9]\d{6,14}")
# An attempt is settled well within this; after it, the claim may go.
PLACEMENT_CLAIM_TTL_SECONDS: Final = 3 * 24 * 3600.0
# After a lost answer: look again after these waits (the provider may still be at work).
DEFAULT_LOOKUP_DELAYS_SECONDS: Final = (0.5, 1.0, 2.0)
# A lookup searches calls created from this long before our request was sent.
LOOKUP_CLOCK_SKEW: Final = timedelta(minutes=2)
# Our keys in the provider's metadata: the attempt id and the key itself.
ATTEMPT_ID_KEY: Final = "attempt_id"
CAMPAIGN_ID_KEY: Final = "campaign_id"
IDEMPOTENCY_METADATA_KEY: Final = "dialer_idempotency_key"
# The campaign's voicemail policy in the request's context (hang_up | leave_message),
# and the rendered message to leave: every adapter passes both on as the agent's
# variables (seed 004: context); Vapi also sets its assistant's voicemailMessage.
VOICEMAIL_ACTION_KEY: Final = "voicemail_action"
VOICEMAIL_MESSAGE_KEY: Final = "voicemail_message"

log = structlog.get_logger(__name__)


class PlacementUncertain(PermanentProviderError):
    """The call may have been placed and no lookup found it: held, never re-sent blind."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="placement_uncertain")


def check_request(request: PlaceCallRequest) -> None:
    """Refuse what no provider would take, before spending a request (and a token)."""
    if not request.idempotency_key:
        raise PermanentProviderError("idempotency_key: required", code="validation_error")
    if not request.agent_id:
        raise PermanentProviderError("agent_id: required", code="validation_error")
    if not E164_PATTERN.fullmatch(request.to):
        raise PermanentProviderError(
            f"to: {request.to!r} is not an E.164 number (+, country code, up to 15 digits)",
            code="invalid_number",
        )


def our_metadata(request: PlaceCallRequest) -> dict[str, str]:
    """The request's metadata plus our key, which a lookup matches on."""
    return {**request.metadata, IDEMPOTENCY_METADATA_KEY: request.idempotency_key}


def dynamic_variables(request: PlaceCallRequest) -> dict[str, str]:
    """Per-contact variables as strings (every provider here takes string values only)."""
    return {
        str(name): "" if value is None else str(value) for name, value in request.context.items()
    }


def opening_message(request: PlaceCallRequest) -> str | None:
    """The campaign's rendered opening line (dispatch puts it in the context)."""
    value = request.context.get("opening_message") or request.instructions
    return str(value) if value else None


def voicemail_message(request: PlaceCallRequest) -> str | None:
    """The message to leave on voicemail, when the campaign asks to leave one."""
    value = request.context.get(VOICEMAIL_MESSAGE_KEY)
    return str(value) if value else None


class HostedVoiceAdapter(abc.ABC):
    """Placement flow of the hosted providers; a subclass says how to send and look up.

    Subclasses set ``name`` and ``honours_idempotency_key`` and implement the abstract
    ``_send_placement``, ``get_call``, ``find_call`` (return None where the provider
    offers no way to find a call by our metadata) and ``parse_event``: one left out
    is a type error, and the class cannot be instantiated.
    """

    name: str  # an instance attribute for the VoiceProvider protocol
    honours_idempotency_key: ClassVar[bool] = False
    can_find_by_metadata: ClassVar[bool] = False

    def __init__(
        self,
        http: ProviderHttp,
        *,
        journal: SeenOnce | None = None,
        lookup_delays_seconds: Sequence[float] = DEFAULT_LOOKUP_DELAYS_SECONDS,
        parallel_requests: int = 1,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = real_utcnow,
    ) -> None:
        self._http = http
        self._parallel_requests = parallel_requests
        self._pool: ThreadPoolExecutor | None = None  # made on the first batch
        # In memory, a re-send from another process is not seen: the wiring passes Redis.
        self._journal = journal if journal is not None else InMemorySeenOnce()
        self._lookup_delays = tuple(lookup_delays_seconds)
        self._sleep = sleep
        self._clock = clock

    # ------------------------------------------------------------------ the interface

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        """Place a call at most once per idempotency key (see the module docstring)."""
        record = self._place(request, None)
        assert not isinstance(record, NotSent)  # no gate, nothing held back
        return record

    def place_calls(
        self, requests: Sequence[PlaceCallRequest], gate: Gate | None = None
    ) -> list[Placement]:
        """Up to ``parallel_requests`` at once, each gated after its rate-limit wait.

        A chunk placed one request after another waits out every round trip in turn;
        overlapping them keeps a chunk to a few. Claims and the gate are per request.
        """
        if len(requests) <= 1 or self._parallel_requests <= 1:
            return [self._place_one(request, gate) for request in requests]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._parallel_requests, f"{self.name}-call")
        return list(self._pool.map(partial(self._place_one, gate=gate), requests))

    def _place_one(self, request: PlaceCallRequest, gate: Gate | None) -> Placement:
        try:
            return self._place(request, gate)
        except (TransientProviderError, PermanentProviderError) as exc:
            return exc

    @abc.abstractmethod
    def get_call(self, call_id: str) -> CallRecord:
        """The call record as the provider has it now (reconciliation)."""

    @abc.abstractmethod
    def find_call(self, request: PlaceCallRequest, sent_after: datetime) -> CallRecord | None:
        """The call placed for ``request`` (matched on our metadata), or None if none is seen."""

    @abc.abstractmethod
    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        """A stored webhook payload as our event; ValueError naming the bad field."""

    def close(self) -> None:
        """Close the pooled connections (and the threads of batch placement)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._http.close()

    # ------------------------------------------------------------------ subclass hooks

    @abc.abstractmethod
    def _send_placement(self, request: PlaceCallRequest) -> CallRecord:
        """Send the create request once; AnswerLost when its answer did not come back."""

    # ------------------------------------------------------------------ the flow

    def _place(self, request: PlaceCallRequest, gate: Gate | None) -> CallRecord | NotSent:
        check_request(request)
        self._http.take_token()
        if gate is not None and not gate(request):
            return NotSent(request.idempotency_key)
        claim = f"placement:{self.name}:{request.idempotency_key}"
        sent_at = self._clock()
        if not self._journal.claim(claim, PLACEMENT_CLAIM_TTL_SECONDS):
            return self._earlier_try(request, sent_at)
        try:
            return self._send_placement(request)
        except AnswerLost as exc:
            return self._after_lost_answer(request, sent_at, exc)
        except (TransientProviderError, PermanentProviderError):
            self._journal.release(claim)  # nothing reached the provider: a retry may send
            raise

    def _earlier_try(self, request: PlaceCallRequest, now: datetime) -> CallRecord:
        """The key was claimed before: find that try's call, or send only if the key protects.

        A lookup that fails says nothing: a transient failure is raised as it is (the
        task comes back later, the claim stays), and only a lookup that answered
        "none" lets a provider that keeps our key be sent the request again.
        """
        since = now - timedelta(seconds=PLACEMENT_CLAIM_TTL_SECONDS)
        try:
            found = self.find_call(request, since) if self.can_find_by_metadata else None
        except PermanentProviderError as exc:
            raise PlacementUncertain(f"{self.name}: the lookup was refused: {exc}") from exc
        if found is not None:
            log.info("provider_call_found_again", provider=self.name, call_id=found.id)
            return found
        if self.honours_idempotency_key and self.can_find_by_metadata:
            return self._send_placement(request)  # the provider itself returns the same call
        raise PlacementUncertain(
            f"{self.name}: an earlier try with key {request.idempotency_key} may have placed"
            " the call and no lookup found it; not sending it again"
        )

    def _after_lost_answer(
        self, request: PlaceCallRequest, sent_at: datetime, exc: AnswerLost
    ) -> CallRecord:
        since = sent_at - LOOKUP_CLOCK_SKEW
        for delay in self._lookup_delays if self.can_find_by_metadata else ():
            self._sleep(delay)
            found = self._find(request, since)
            if found is not None:
                log.info("provider_call_found_after_lost_answer", provider=self.name)
                return found
        if self.honours_idempotency_key:
            raise exc  # a retry with the same key cannot place a second call
        raise PlacementUncertain(
            f"{self.name}: {exc}; the call may have been placed and no lookup found it"
        ) from exc

    def _find(self, request: PlaceCallRequest, since: datetime) -> CallRecord | None:
        if not self.can_find_by_metadata:
            return None
        try:
            return self.find_call(request, since)
        except (TransientProviderError, PermanentProviderError) as exc:
            log.warning("provider_call_lookup_failed", provider=self.name, error=str(exc))
            return None


# --------------------------------------------------------------------------- reading answers


def sentiment_label(raw: object) -> str | None:
    """A provider's sentiment as the AI objective's label (positive | negative | neutral)."""
    text = str(raw).strip().lower() if raw is not None else ""
    return text if text in ("positive", "negative", "neutral") else None


def success_text(raw: object) -> str | None:
    """A provider's success verdict as seed 000's ``call_successful``: success | failure."""
    if isinstance(raw, bool):
        return "success" if raw else "failure"
    text = str(raw).strip().lower() if raw is not None else ""
    if text in ("true", "success", "successful", "pass", "yes"):
        return "success"
    if text in ("false", "failure", "failed", "fail", "no"):
        return "failure"
    return text or None


def dollars_to_millicents(raw: object) -> int | None:
    """A cost in US dollars (a number or a string such as Twilio's "-0.0130")."""
    try:
        dollars = abs(float(str(raw)))
    except (TypeError, ValueError):
        return None
    return round(dollars * 100_000)


def metadata_strings(raw: object) -> dict[str, str]:
    """A provider's metadata object as our string map (non-string values are dropped)."""
    if not isinstance(raw, dict):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, str)}


# Seed 000 attempt fields an agent's custom extraction may fill, by their seed names
# (a Retell custom analysis item, a Vapi structured-data key, an ElevenLabs data
# collection item): seed name -> CallAnalysis field.
SEED_EXTRACTION_FIELDS: Final = {
    "call_summary_title": "summary_title",
    "agent_goal_result": "goal_result",
    "agent_goal_rationale": "goal_rationale",
    "agent_goal_score": "goal_score",
    "customer_sentiment": "sentiment",
    "customer_sentiment_rationale": "sentiment_rationale",
    "follow_up_required": "follow_up_required",
    "follow_up_required_rationale": "follow_up_rationale",
    "escalation_required": "escalation_required",
    "escalation_required_rationale": "escalation_rationale",
}
_FLAG_FIELDS: Final = frozenset({"follow_up_required", "escalation_required"})


def analysis_from(extraction: Mapping[str, Any] | None, **native: Any) -> CallAnalysis:
    """The provider's own analysis fields, completed by seed-named extraction items.

    What the provider says natively (summary, success, sentiment) wins; the agent's
    extraction fills the rest of seed 000's fields when it names them.
    """
    values: dict[str, Any] = {}
    for seed_name, ours in SEED_EXTRACTION_FIELDS.items():
        if extraction is None or extraction.get(seed_name) is None:
            continue
        values[ours] = _typed(ours, extraction[seed_name])
    values.update({name: value for name, value in native.items() if value is not None})
    return CallAnalysis(**{k: v for k, v in values.items() if v is not None})


def _typed(field_name: str, raw: Any) -> Any:
    if field_name in _FLAG_FIELDS:
        verdict = success_text(raw)
        return None if verdict is None else verdict == "success"
    if field_name == "goal_score":
        try:
            score = float(raw)
        except (TypeError, ValueError):
            return None
        return score if 0.0 <= score <= 1.0 else None
    if field_name == "sentiment":
        return sentiment_label(raw)
    return str(raw)
