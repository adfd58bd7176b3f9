"""The CHECK constraints allow exactly the enums' words, and each typed column its own enum's."""

from __future__ import annotations

import re
from enum import StrEnum

import pytest
from sqlalchemy import CheckConstraint, Column
from sqlalchemy.dialects import postgresql

from dialer.policies import vocabulary as policy
from models import Base
from models import vocabulary as db
from models.base import Word


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
        (db.WEBHOOK_EVENT_TYPES, set(policy.WebhookEventType)),
        (db.WEBHOOK_DELIVERY_STATUSES, set(policy.WebhookDeliveryStatus)),
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


def _typed_columns() -> list[tuple[str, Column[object], type[StrEnum]]]:
    return [
        (table.name, column, column.type.words)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, Word)
    ]


def _check_words(table: str, column: str) -> set[str] | None:
    for constraint in Base.metadata.tables[table].constraints:
        if isinstance(constraint, CheckConstraint):
            found = re.fullmatch(rf"{column} IN \((.*)\)", str(constraint.sqltext))
            if found:
                return {word.strip(" '") for word in found.group(1).split(",")}
    return None


def test_status_columns_are_typed_with_their_enum() -> None:
    typed = {(table, column.name) for table, column, _ in _typed_columns()}
    assert {("call_attempts", "status"), ("enrollments", "state"), ("messages", "purpose")} <= typed
    assert ("campaigns", "fallback_channel") in typed


def test_a_typed_columns_check_allows_only_its_enums_words() -> None:
    for table, column, words in _typed_columns():
        allowed = _check_words(table, column.name)
        if allowed is not None:  # call_attempts.direction has no CHECK
            assert allowed <= {str(word) for word in words}, (table, column.name)
            assert allowed, (table, column.name)


def test_a_word_column_stores_the_string_and_reads_the_member() -> None:
    column_type = Word(policy.AttemptStatus)
    dialect = postgresql.dialect()
    read = column_type.result_processor(dialect, None)
    bind = column_type.bind_processor(dialect)
    assert read is not None
    assert bind is not None
    assert read("in_progress") is policy.AttemptStatus.IN_PROGRESS
    assert read(None) is None
    stored = bind(policy.AttemptStatus.QUEUED)
    assert (type(stored), stored) == (str, "queued")
    assert bind("cancelled") == "cancelled"  # passed through: the CHECK refuses it, loudly
