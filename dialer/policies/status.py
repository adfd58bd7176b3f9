"""Apply a provider's call status to a call attempt, monotonically.

Provider events (webhooks, polls) may arrive twice or out of order, so an event
only ever moves an attempt forward: pending < queued < dispatching = uncertain <
in_progress < terminal (completed, failed, canceled). A terminal attempt never changes again:
"completed" followed by a late "ringing" stays completed, and a second terminal
event (say "failed" after "completed") is ignored, first terminal wins.

Mapping (GUIDE section 3, seed 004 statuses):

=============================================  ===========  ==============
provider status                                attempt      outcome
=============================================  ===========  ==============
queued, initiated, ringing, in_progress        in_progress  (unchanged)
completed                                      completed    answered, or voicemail
no_answer / busy                               completed    no_answer / busy
canceled                                       canceled     canceled
failed                                         failed       failed
=============================================  ===========  ==============

``voicemail`` is the caller's reading of the provider's hangup reason or
answering-machine detection; it only refines "completed" (a "busy" call that also
claims a machine is still busy).
"""

from __future__ import annotations

from dataclasses import dataclass

from dialer.errors import ValidationFailed
from dialer.policies.vocabulary import (
    TERMINAL_ATTEMPT_STATUSES,
    AttemptStatus,
    Outcome,
    ProviderCallStatus,
)

_TERMINAL_RANK = 4

_RANK: dict[AttemptStatus, int] = {
    AttemptStatus.PENDING: 0,
    AttemptStatus.QUEUED: 1,
    AttemptStatus.DISPATCHING: 2,
    # Held after a lost placement answer: any event of the call moves it on.
    AttemptStatus.UNCERTAIN: 2,
    AttemptStatus.IN_PROGRESS: 3,
    AttemptStatus.COMPLETED: _TERMINAL_RANK,
    AttemptStatus.FAILED: _TERMINAL_RANK,
    AttemptStatus.CANCELED: _TERMINAL_RANK,
}

_LIVE_PROVIDER_STATUSES = frozenset(
    {
        ProviderCallStatus.QUEUED,
        ProviderCallStatus.INITIATED,
        ProviderCallStatus.RINGING,
        ProviderCallStatus.IN_PROGRESS,
    }
)

_FINAL_PROVIDER_STATUSES: dict[ProviderCallStatus, tuple[AttemptStatus, Outcome]] = {
    ProviderCallStatus.COMPLETED: (AttemptStatus.COMPLETED, Outcome.ANSWERED),
    ProviderCallStatus.NO_ANSWER: (AttemptStatus.COMPLETED, Outcome.NO_ANSWER),
    ProviderCallStatus.BUSY: (AttemptStatus.COMPLETED, Outcome.BUSY),
    ProviderCallStatus.CANCELED: (AttemptStatus.CANCELED, Outcome.CANCELED),
    ProviderCallStatus.FAILED: (AttemptStatus.FAILED, Outcome.FAILED),
}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """The attempt's status and outcome after an event; ``changed`` says whether to write."""

    status: AttemptStatus
    outcome: Outcome | None
    changed: bool


def is_terminal(status: AttemptStatus) -> bool:
    """True when no later event may change the attempt."""
    return status in TERMINAL_ATTEMPT_STATUSES


def status_rank(status: AttemptStatus) -> int:
    """Progress order of attempt statuses; all terminal statuses share the top rank."""
    return _RANK[status]


def parse_provider_status(raw: str) -> ProviderCallStatus:
    """Read a provider status string, rejecting values seed 004 does not define."""
    try:
        return ProviderCallStatus(raw.strip().lower())
    except ValueError:
        known = ", ".join(ProviderCallStatus)
        raise ValidationFailed(
            "status", f"unknown provider status {raw!r}; known: {known}"
        ) from None


def map_provider_status(
    provider_status: ProviderCallStatus, *, voicemail: bool = False
) -> tuple[AttemptStatus, Outcome | None]:
    """The attempt status and outcome a provider status stands for (outcome None while live)."""
    if provider_status in _LIVE_PROVIDER_STATUSES:
        return AttemptStatus.IN_PROGRESS, None
    status, outcome = _FINAL_PROVIDER_STATUSES[provider_status]
    if voicemail and provider_status is ProviderCallStatus.COMPLETED:
        outcome = Outcome.VOICEMAIL
    return status, outcome


def apply_provider_status(
    current_status: AttemptStatus,
    current_outcome: Outcome | None,
    provider_status: ProviderCallStatus,
    *,
    voicemail: bool = False,
) -> StatusChange:
    """Move the attempt forward by one provider event, or leave it as it is."""
    unchanged = StatusChange(current_status, current_outcome, changed=False)
    if is_terminal(current_status):
        return unchanged
    target_status, target_outcome = map_provider_status(provider_status, voicemail=voicemail)
    # Equal rank is a duplicate (ringing after in_progress): nothing to write.
    if status_rank(target_status) <= status_rank(current_status):
        return unchanged
    outcome = target_outcome if target_outcome is not None else current_outcome
    return StatusChange(target_status, outcome, changed=True)
