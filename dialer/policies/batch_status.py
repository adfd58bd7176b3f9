"""Seed 003's campaign status words, read from the project's (seed 002) lifecycle.

Seed 003 lists batch campaigns as draft/scheduled/active/paused/completed/failed/
cancelled; the project's campaigns are draft/running/paused/done. GET /campaigns (the
seed 003 list) speaks seed 003 in its body and its ``status`` filter:

| project (seed 002) | seed 003 |
|---|---|
| draft | draft |
| running, `schedule_type` scheduled, `scheduled_at` still ahead | scheduled |
| running otherwise | active |
| paused | paused |
| done (finished by itself or completed by the user) | completed |
| (no such state) | failed, cancelled: always an empty list |

The filter also takes the project's own words (running = scheduled or active).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from dialer.policies.vocabulary import CampaignStatus, ScheduleType


class BatchStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Seed 003 words that are one project status, whatever the schedule.
PLAIN_STATUSES: dict[BatchStatus, CampaignStatus] = {
    BatchStatus.DRAFT: CampaignStatus.DRAFT,
    BatchStatus.PAUSED: CampaignStatus.PAUSED,
    BatchStatus.COMPLETED: CampaignStatus.DONE,
}
NEVER_USED: frozenset[BatchStatus] = frozenset({BatchStatus.FAILED, BatchStatus.CANCELLED})


def batch_status(
    status: str, schedule_type: str, scheduled_at: datetime | None, now: datetime
) -> BatchStatus:
    """The seed 003 word for a campaign in ``status`` at ``now``."""
    if status == CampaignStatus.RUNNING:
        waiting = (
            schedule_type == ScheduleType.SCHEDULED
            and scheduled_at is not None
            and scheduled_at > now
        )
        return BatchStatus.SCHEDULED if waiting else BatchStatus.ACTIVE
    return {
        CampaignStatus.DRAFT: BatchStatus.DRAFT,
        CampaignStatus.PAUSED: BatchStatus.PAUSED,
        CampaignStatus.DONE: BatchStatus.COMPLETED,
    }[CampaignStatus(status)]
