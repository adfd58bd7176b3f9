"""What happened to one call attempt, in order, from the timestamps it keeps.

The attempt records when it was scheduled, queued, handed to the provider, rang, was
answered, ended and finished (each step written once, in the monotonic order the
results apply). The provider's webhooks themselves stay in the inbox; they are not
listed here: the inbox has no index by attempt, and a page must not scan it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from models import CallAttempt

_STEPS: Final = (
    ("scheduled_at", "scheduled"),
    ("queued_at", "queued"),
    ("dispatched_at", "dispatched to the provider"),
    ("ringing_at", "ringing"),
    ("answered_at", "answered"),
    ("ended_at", "ended"),
    ("finished_at", "finished"),
)


@dataclass(frozen=True)
class HistoryEntry:
    at: datetime
    step: str


def call_history(attempt: CallAttempt) -> list[HistoryEntry]:
    """The attempt's steps that happened, oldest first."""
    entries = [
        HistoryEntry(at, step)
        for column, step in _STEPS
        if (at := getattr(attempt, column)) is not None
    ]
    return sorted(entries, key=lambda entry: entry.at)
