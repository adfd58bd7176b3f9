"""The CHECK constraints allow exactly the enums' words."""

from __future__ import annotations

from enum import StrEnum

import pytest

from dialer.policies import vocabulary as policy
from models import vocabulary as db


@pytest.mark.parametrize(
    ("db_words", "words"),
    [
        (db.CAMPAIGN_STATUSES, set(policy.CampaignStatus)),
        (db.ATTEMPT_STATUSES, set(policy.AttemptStatus)),
        (db.OUTCOMES, set(policy.Outcome)),
        (db.ENROLLMENT_STATES, set(policy.EnrollmentState)),
        (db.ROTATION_STRATEGIES, set(policy.RotationStrategy)),
        (db.GOAL_LOGICS, set(policy.GoalLogic)),
        (db.SCHEDULE_TYPES, set(policy.ScheduleType)),
        (db.MESSAGE_DIRECTIONS, set(policy.Direction)),
        (db.MESSAGE_PURPOSES, set(policy.MessagePurpose)),
        (db.MESSAGE_STATUSES, set(policy.MessageStatus)),
        (db.CONTACT_EVENT_KINDS, set(policy.ContactEventKind)),
        (db.PROVIDER_EVENT_STATUSES, set(policy.ProviderEventStatus)),
        (db.CONTACT_CHANNELS, set(policy.Channel)),
        (db.MESSAGE_CHANNELS, set(policy.Channel) - {policy.Channel.CALL}),
        (db.CHANNEL_KINDS, set(policy.Channel) - {policy.Channel.CALL}),
        (db.FALLBACK_CHANNELS, set(policy.FallbackChannel)),
        (db.FIRST_CONTACT_CHANNELS, {policy.Channel.CALL, *policy.FallbackChannel}),
    ],
)
def test_check_words_equal_the_enum_values(db_words: tuple[str, ...], words: set[StrEnum]) -> None:
    assert sorted(db_words) == sorted(str(word) for word in words)
    assert all(type(word) is str for word in db_words)  # plain strings in the DDL


def test_open_statuses_agree() -> None:
    assert set(db.OPEN_ATTEMPT_STATUSES) == {s.value for s in policy.OPEN_ATTEMPT_STATUSES}


def test_every_fallback_channel_is_a_channel() -> None:
    assert {str(c) for c in policy.FallbackChannel} <= {str(c) for c in policy.Channel}
