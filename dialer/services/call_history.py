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

# Labels for people, not status words (the vocabulary's words stay in its enums).
_STEPS: Final = (
    ("scheduled_at", "due to be called"),
    ("queued_at", "claimed for dispatch"),
    ("dispatched_at", "dispatched to the provider"),
    ("ringing_at", "the phone rang"),
    ("answered_at", "the call was answered"),
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
