"""Seed 003's status words read from the project's lifecycle (dialer.policies.batch_status)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.policies.batch_status import BatchStatus, batch_status

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "schedule_type", "scheduled_at", "expected"),
    [
        ("draft", "immediate", None, BatchStatus.DRAFT),
        ("draft", "scheduled", NOW + timedelta(days=1), BatchStatus.DRAFT),
        ("running", "immediate", None, BatchStatus.ACTIVE),
        ("running", "scheduled", NOW + timedelta(seconds=1), BatchStatus.SCHEDULED),
        ("running", "scheduled", NOW, BatchStatus.ACTIVE),  # its time has come
        ("running", "scheduled", NOW - timedelta(days=1), BatchStatus.ACTIVE),
        ("paused", "scheduled", NOW + timedelta(days=1), BatchStatus.PAUSED),
        ("done", "immediate", None, BatchStatus.COMPLETED),
    ],
)
def test_batch_status(
    status: str, schedule_type: str, scheduled_at: datetime | None, expected: BatchStatus
) -> None:
    assert batch_status(status, schedule_type, scheduled_at, NOW) is expected
