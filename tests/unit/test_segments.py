"""Resume segments: selection per segment and the CampaignResumeResult counts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.errors import ValidationFailed
from dialer.policies.segments import (
    EnrollmentSnapshot,
    ResumePlan,
    plan_resume,
    segment_selects,
)
from dialer.policies.vocabulary import Channel, EnrollmentState, Segment

S = EnrollmentState


def snap(
    state: EnrollmentState = S.ACTIVE,
    attempts: int = 0,
    messages: int = 0,
    contact: bool = True,
    open_attempt: bool = False,
) -> EnrollmentSnapshot:
    return EnrollmentSnapshot(
        state=state,
        attempts_made=attempts,
        messages_sent=messages,
        has_contact=contact,
        has_open_attempt=open_attempt,
    )


@pytest.mark.parametrize(
    ("segment", "snapshot", "selected"),
    [
        (Segment.NOT_ANSWERED, snap(S.NOT_ANSWERED, attempts=4), True),
        (Segment.NOT_ANSWERED, snap(S.UNRESOLVED, attempts=1), False),
        (Segment.NOT_ANSWERED, snap(S.ACTIVE, attempts=2), False),
        (Segment.FAILED, snap(S.FAILED, attempts=1), True),
        (Segment.FAILED, snap(S.NOT_ANSWERED, attempts=3), False),
        (Segment.UNRESOLVED, snap(S.UNRESOLVED, attempts=1), True),
        (Segment.UNRESOLVED, snap(S.GOAL_MET, attempts=1), False),
        (Segment.NOT_CONTACTED, snap(S.ACTIVE), True),
        (Segment.NOT_CONTACTED, snap(S.ACTIVE, open_attempt=True), True),
        (Segment.NOT_CONTACTED, snap(S.MISSING_CONTACT, contact=False), True),
        (Segment.NOT_CONTACTED, snap(S.ACTIVE, attempts=1), False),
        (Segment.NOT_CONTACTED, snap(S.ACTIVE, messages=1), False),
        (Segment.NOT_CONTACTED, snap(S.OPTED_OUT), False),
        (Segment.NOT_CONTACTED, snap(S.GOAL_MET), False),
        (Segment.NOT_ANSWERED, snap(S.OPTED_OUT, attempts=2), False),
    ],
)
def test_segment_selects(segment: Segment, snapshot: EnrollmentSnapshot, selected: bool) -> None:
    assert segment_selects(segment, snapshot) is selected


MIXED = [
    snap(S.NOT_ANSWERED, attempts=3),  # 0 scheduled
    snap(S.NOT_ANSWERED, attempts=3, open_attempt=True),  # 1 pending already
    snap(S.NOT_ANSWERED, attempts=3, contact=False),  # 2 no phone
    snap(S.UNRESOLVED, attempts=1),  # 3 other segment
    snap(S.NOT_ANSWERED, attempts=2),  # 4 scheduled
    snap(S.ACTIVE),  # 5 not contacted, scheduled
    snap(S.MISSING_CONTACT, contact=False),  # 6 not contacted, missing contact
    snap(S.MISSING_CONTACT, contact=True),  # 7 state says missing contact
    snap(S.OPTED_OUT),  # 8 never selected
]


@pytest.mark.parametrize(
    ("segment", "channel", "expected"),
    [
        (Segment.NOT_ANSWERED, Channel.CALL, ResumePlan(4, 2, 0, 1, 1, (0, 4))),
        (Segment.NOT_ANSWERED, Channel.WHATSAPP, ResumePlan(4, 0, 2, 1, 1, (0, 4))),
        (Segment.NOT_CONTACTED, Channel.CALL, ResumePlan(3, 1, 0, 0, 2, (5,))),
        (Segment.UNRESOLVED, Channel.WHATSAPP, ResumePlan(1, 0, 1, 0, 0, (3,))),
        (Segment.FAILED, Channel.CALL, ResumePlan(0, 0, 0, 0, 0, ())),
    ],
)
def test_plan_resume_counts(segment: Segment, channel: Channel, expected: ResumePlan) -> None:
    assert plan_resume(segment, MIXED, channel) == expected


def test_email_is_not_a_first_contact_channel() -> None:
    with pytest.raises(ValidationFailed) as info:
        plan_resume(Segment.NOT_ANSWERED, MIXED, Channel.EMAIL)
    assert info.value.field == "first_contact_channel"


snapshot_st = st.builds(
    EnrollmentSnapshot,
    st.sampled_from(list(EnrollmentState)),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=2),
    st.booleans(),
    st.booleans(),
)


@given(
    st.sampled_from(list(Segment)),
    st.lists(snapshot_st, max_size=20),
    st.sampled_from([Channel.CALL, Channel.WHATSAPP]),
)
def test_every_selected_enrollment_lands_in_exactly_one_bucket(
    segment: Segment, snapshots: list[EnrollmentSnapshot], channel: Channel
) -> None:
    result = plan_resume(segment, snapshots, channel)
    scheduled = result.scheduled_calls + result.queued_messages
    skipped = result.skipped_existing_pending + result.skipped_missing_contact
    assert result.selected_targets == scheduled + skipped
    assert len(result.to_schedule) == scheduled
    for index in result.to_schedule:
        chosen = snapshots[index]
        assert segment_selects(segment, chosen)
        assert chosen.has_contact
        assert not chosen.has_open_attempt
        assert chosen.state not in (S.GOAL_MET, S.OPTED_OUT, S.MISSING_CONTACT)
