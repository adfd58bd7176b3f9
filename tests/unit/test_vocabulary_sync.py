"""models/ spells the status words for its CHECK constraints; they must equal the policies'."""

from __future__ import annotations

import pytest

from dialer.policies import vocabulary as policy
from models import vocabulary as db


@pytest.mark.parametrize(
    ("db_words", "enum"),
    [
        (db.CAMPAIGN_STATUSES, policy.CampaignStatus),
        (db.ATTEMPT_STATUSES, policy.AttemptStatus),
        (db.OUTCOMES, policy.Outcome),
        (db.ENROLLMENT_STATES, policy.EnrollmentState),
        (db.ROTATION_STRATEGIES, policy.RotationStrategy),
    ],
)
def test_database_vocabulary_matches_policy_enums(db_words: tuple[str, ...], enum: type) -> None:
    assert set(db_words) == {member.value for member in enum}  # type: ignore[attr-defined]


def test_open_statuses_agree() -> None:
    assert set(db.OPEN_ATTEMPT_STATUSES) == {s.value for s in policy.OPEN_ATTEMPT_STATUSES}
