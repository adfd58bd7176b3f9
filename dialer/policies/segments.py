"""Resume segments: which enrollments a resume targets, and what it does with them.

Segments (seed 002 ``CampaignResumeRequest.segment``):

- not_answered: all attempts used, never reached (state not_answered);
- not_contacted: nothing ever sent, neither a call attempt nor a message, and the
  customer is neither goal_met nor opted_out;
- failed: the call could not be placed (state failed);
- unresolved: contacted, goal not met (state unresolved).

``plan_resume`` produces the counts of seed 002 ``CampaignResumeResult``. Each
selected enrollment lands in exactly one bucket, checked in this order: an open
attempt already holds its turn (skipped_existing_pending); no phone number, or
state missing_contact (skipped_missing_contact); otherwise it is scheduled with
the campaign's first contact channel (scheduled_calls, or queued_messages: seed 002's
queued_whatsapp, the first message on the fallback channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dialer.errors import ValidationFailed
from dialer.policies.vocabulary import Channel, EnrollmentState, FallbackChannel, Segment

_NEVER_CONTACT_AGAIN = frozenset({EnrollmentState.GOAL_MET, EnrollmentState.OPTED_OUT})

_STATE_OF_SEGMENT: dict[Segment, EnrollmentState] = {
    Segment.NOT_ANSWERED: EnrollmentState.NOT_ANSWERED,
    Segment.FAILED: EnrollmentState.FAILED,
    Segment.UNRESOLVED: EnrollmentState.UNRESOLVED,
}


# A message-first campaign's first contact is on its fallback channel.
_FALLBACK_CHANNELS = frozenset(Channel(channel) for channel in FallbackChannel)


@dataclass(frozen=True, slots=True)
class EnrollmentSnapshot:
    """What a resume needs to know about one enrollment.

    ``has_contact`` means the customer has a phone number (calls and the fallback
    channel's messages both need one).
    """

    state: EnrollmentState
    attempts_made: int
    messages_sent: int
    has_contact: bool
    has_open_attempt: bool


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """Counts for ``CampaignResumeResult`` and the snapshots to schedule (indices)."""

    selected_targets: int
    scheduled_calls: int
    queued_messages: int  # wire: queued_whatsapp
    skipped_existing_pending: int
    skipped_missing_contact: int
    to_schedule: tuple[int, ...]


def segment_selects(segment: Segment, snapshot: EnrollmentSnapshot) -> bool:
    """True when the enrollment belongs to the segment."""
    if segment is Segment.NOT_CONTACTED:
        never_contacted = snapshot.attempts_made == 0 and snapshot.messages_sent == 0
        return never_contacted and snapshot.state not in _NEVER_CONTACT_AGAIN
    return snapshot.state is _STATE_OF_SEGMENT[segment]


def plan_resume(
    segment: Segment, snapshots: Sequence[EnrollmentSnapshot], first_channel: Channel
) -> ResumePlan:
    """Sort the segment's enrollments into skipped and scheduled."""
    if first_channel is not Channel.CALL and first_channel not in _FALLBACK_CHANNELS:
        raise ValidationFailed(
            "first_contact_channel",
            f"must be call or a fallback channel, got {first_channel!r}",
        )
    selected = pending = missing = 0
    to_schedule: list[int] = []
    for index, snapshot in enumerate(snapshots):
        if not segment_selects(segment, snapshot):
            continue
        selected += 1
        if snapshot.has_open_attempt:
            pending += 1
        elif not snapshot.has_contact or snapshot.state is EnrollmentState.MISSING_CONTACT:
            missing += 1
        else:
            to_schedule.append(index)
    scheduled = len(to_schedule)
    calls = scheduled if first_channel is Channel.CALL else 0
    return ResumePlan(
        selected_targets=selected,
        scheduled_calls=calls,
        queued_messages=scheduled - calls,
        skipped_existing_pending=pending,
        skipped_missing_contact=missing,
        to_schedule=tuple(to_schedule),
    )
