"""The event wire format: one JSON body per provider event, read and written here.

The simulator's event queue, the sandbox's webhooks, the seed 004 HTTP adapter
(dialer.providers.http_voice), the WhatsApp adapter's event kinds and the webhook
ingress all speak it:

    {"event_id": "call_x:completed", "type": "call.status",
     "occurred_at": "2025-01-06T10:00:00+00:00", "call": {seed 004 call record}}

``type`` is one of ``call.status`` (with ``call``), ``message.status`` and
``message.inbound`` (with ``message``). Event ids are ``f"{object_id}:{status}"``
(``call_x:ringing``, ``msg_x:delivered``, ``inb_x:inbound``), so a duplicate
delivery carries the same id and the inbox drops it. ``event_payload`` and
``parse_event_payload`` are exact inverses; a malformed body raises ValueError
naming the event kind and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, Final

from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers.base import (
    CallAnalysis,
    CallRecord,
    InboundMessage,
    MessageStatusUpdate,
    ProviderEvent,
)

# The provider an event names when its caller names none: the simulator, whose
# events were the first to use this format.
DEFAULT_PROVIDER: Final = "simulated"
CALL_STATUS_EVENT: Final = "call.status"
MESSAGE_INBOUND_EVENT: Final = "message.inbound"
MESSAGE_STATUS_EVENT: Final = "message.status"
EVENT_KINDS: Final = (CALL_STATUS_EVENT, MESSAGE_INBOUND_EVENT, MESSAGE_STATUS_EVENT)
MESSAGE_STATUSES: Final = ("sent", "delivered", "read", "failed")


def call_event_id(call_id: str, status: str) -> str:
    """The stable id of a call's status event: a duplicate delivery carries the same id."""
    return f"{call_id}:{status}"


def call_status_event(record: CallRecord, provider: str = DEFAULT_PROVIDER) -> ProviderEvent:
    """The ``call.status`` event reporting ``record``, dated when it reached its status."""
    return ProviderEvent(
        provider=provider,
        event_id=call_event_id(record.id, record.status),
        kind=CALL_STATUS_EVENT,
        occurred_at=_status_time(record),
        call=record,
    )


def message_status_event(
    update: MessageStatusUpdate, occurred_at: datetime, provider: str = DEFAULT_PROVIDER
) -> ProviderEvent:
    return ProviderEvent(
        provider=provider,
        event_id=f"{update.provider_message_id}:{update.status}",
        kind=MESSAGE_STATUS_EVENT,
        occurred_at=occurred_at,
        message_status=update,
    )


def inbound_message_event(
    message: InboundMessage, occurred_at: datetime, provider: str = DEFAULT_PROVIDER
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
        "occurred_at": iso(event.occurred_at),
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
        "created_at": iso_or_none(record.created_at),
        "ringing_at": iso_or_none(record.ringing_at),
        "answered_at": iso_or_none(record.answered_at),
        "ended_at": iso_or_none(record.ended_at),
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


def parse_event_payload(
    payload: Mapping[str, Any], provider: str = DEFAULT_PROVIDER
) -> ProviderEvent:
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
            return as_utc(datetime.fromisoformat(value))
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


# --------------------------------------------------------------------------- time


def as_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC; everything leaves as aware UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime) -> str:
    return as_utc(value).isoformat()


def iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def time_or_none(value: Any) -> datetime | None:
    return None if value is None else as_utc(datetime.fromisoformat(str(value)))


def _status_time(record: CallRecord) -> datetime:
    """When the call reached its current status (the event's occurred_at)."""
    moments = (record.ended_at, record.answered_at, record.ringing_at, record.created_at)
    for moment in moments:
        if moment is not None:
            return moment
    raise ValueError(f"call {record.id}: no timestamp to date its {record.status} event")
