"""When each drawn event is delivered: the webhook bodies a plan puts on the event queue.

A call delivers its ringing event at ringing time and its final event at the end;
a message its delivery status and, when the customer replies, the reply. The fault
knobs add a second delivery of the last event (a webhook retry) or move the ringing
event after the final one. The sandbox posts the same deliveries as webhooks.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from dialer.providers.base import MessageStatusUpdate, ProviderEvent
from dialer.providers.events import (
    call_status_event,
    event_payload,
    inbound_message_event,
    message_status_event,
)
from dialer.providers.simulation.outcomes import CallPlan, EventFaults, MessagePlan, seconds_after


class Delivery(NamedTuple):
    """One delivery of an event: a unique token, its due time and its webhook body."""

    token: str
    due: datetime
    body: str


def delivery(event: ProviderEvent, due: datetime, copy: int = 0) -> Delivery:
    # The token differs per copy so a duplicate is a second member of the queue.
    return Delivery(f"{event.event_id}#{copy}", due, json.dumps(event_payload(event)))


def call_deliveries(plan: CallPlan, faults: EventFaults) -> list[Delivery]:
    """The ringing event at ringing time and the final one at the end (or reordered)."""
    ended_at = plan.final.ended_at
    if ended_at is None:
        raise ValueError(f"call {plan.final.id}: a planned call must end")
    deliveries = [delivery(call_status_event(plan.final), ended_at)]
    ringing_at = plan.final.ringing_at
    if ringing_at is not None:
        ringing_due = seconds_after(ended_at, 1.0) if faults.reorder else ringing_at
        ringing = call_status_event(plan.record_at(ringing_at))
        deliveries.insert(0, delivery(ringing, ringing_due))
    return _with_faults(deliveries, faults)


def message_deliveries(message_id: str, plan: MessagePlan, faults: EventFaults) -> list[Delivery]:
    delivered = MessageStatusUpdate(provider_message_id=message_id, status="delivered")
    deliveries = [delivery(message_status_event(delivered, plan.delivered_at), plan.delivered_at)]
    if plan.reply is not None and plan.reply_at is not None:
        inbound = inbound_message_event(plan.reply, plan.reply_at)
        deliveries.append(delivery(inbound, plan.reply_at))
    # Reordering means nothing for one-directional message events; duplicates do.
    return _with_faults(deliveries, faults)


def _with_faults(deliveries: list[Delivery], faults: EventFaults) -> list[Delivery]:
    """Append a second delivery of the last event when the duplicate knob fired."""
    if not faults.duplicate:
        return deliveries
    last = max(deliveries, key=lambda item: item.due)
    token = last.token.rsplit("#", 1)[0] + "#1"
    again = seconds_after(last.due, faults.duplicate_delay_seconds)
    return [*deliveries, Delivery(token, again, last.body)]
