"""The shared vocabulary matches the seeds and the GUIDE's groupings."""

from __future__ import annotations

from enum import StrEnum

import pytest

from dialer.policies.vocabulary import (
    CLOSED_ENROLLMENT_STATES,
    OPEN_ATTEMPT_STATUSES,
    TERMINAL_ATTEMPT_STATUSES,
    UNANSWERED_OUTCOMES,
    AttemptStatus,
    CampaignStatus,
    EnrollmentState,
    Outcome,
    ProviderCallStatus,
    RotationStrategy,
    Segment,
)


@pytest.mark.parametrize(
    ("enum", "values"),
    [
        (
            AttemptStatus,
            # Seed 000's words, plus `uncertain`: a placement held after its answer was lost.
            "pending queued dispatching uncertain in_progress completed failed canceled",
        ),
        (Outcome, "answered no_answer busy voicemail rejected failed canceled"),
        (CampaignStatus, "draft running paused done"),
        (Segment, "not_answered not_contacted failed unresolved"),
        (RotationStrategy, "random sequential round_robin"),
        (
            ProviderCallStatus,
            "queued initiated ringing in_progress completed no_answer busy canceled failed",
        ),
    ],
)
def test_enum_values_are_the_seed_strings(enum: type[StrEnum], values: str) -> None:
    assert [str(member) for member in enum] == values.split()


def test_open_and_terminal_statuses_partition_attempt_statuses() -> None:
    assert OPEN_ATTEMPT_STATUSES.isdisjoint(TERMINAL_ATTEMPT_STATUSES)
    assert set(AttemptStatus) == OPEN_ATTEMPT_STATUSES | TERMINAL_ATTEMPT_STATUSES


def test_unanswered_outcomes_exclude_answered_rejected_and_canceled() -> None:
    assert {"no_answer", "busy", "voicemail", "failed"} == UNANSWERED_OUTCOMES


def test_only_active_enrollments_are_open() -> None:
    assert EnrollmentState.ACTIVE not in CLOSED_ENROLLMENT_STATES
    assert len(CLOSED_ENROLLMENT_STATES) == len(EnrollmentState) - 1


def test_members_equal_their_stored_strings() -> None:
    assert AttemptStatus("in_progress") is AttemptStatus.IN_PROGRESS
    stored: str = "no_answer"
    assert stored == Outcome.NO_ANSWER
