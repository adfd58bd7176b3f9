"""The shared words of the dialer (GUIDE section 3), as string enums.

Every value is the exact string the seeds use, so an enum member compares equal to
the string stored in the database or sent over the API (``AttemptStatus("queued")``).
"""

from __future__ import annotations

from enum import StrEnum


class AttemptStatus(StrEnum):
    """Where a call attempt is in its life (seed 000 ``CallAttemptOut.status``)."""

    PENDING = "pending"
    QUEUED = "queued"
    DISPATCHING = "dispatching"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class Outcome(StrEnum):
    """How a finished call attempt went (seed 000 ``CallAttemptOut.outcome``)."""

    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELED = "canceled"


class EnrollmentState(StrEnum):
    """Where a customer stands in a campaign."""

    ACTIVE = "active"
    GOAL_MET = "goal_met"
    UNRESOLVED = "unresolved"
    NOT_ANSWERED = "not_answered"
    FAILED = "failed"
    OPTED_OUT = "opted_out"
    MISSING_CONTACT = "missing_contact"


class CampaignStatus(StrEnum):
    """Campaign status (seed 002 ``CampaignOut.status``)."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"


class Segment(StrEnum):
    """Which enrollments a resume targets (seed 002 ``CampaignResumeRequest.segment``)."""

    NOT_ANSWERED = "not_answered"
    NOT_CONTACTED = "not_contacted"
    FAILED = "failed"
    UNRESOLVED = "unresolved"


class Channel(StrEnum):
    """A way to reach a customer."""

    CALL = "call"
    WHATSAPP = "whatsapp"
    EMAIL = "email"


class RotationStrategy(StrEnum):
    """How the caller ID is chosen among a campaign's numbers (seed 003)."""

    RANDOM = "random"
    SEQUENTIAL = "sequential"
    ROUND_ROBIN = "round_robin"


class ProviderCallStatus(StrEnum):
    """A call's status as the voice provider reports it (seed 004)."""

    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CANCELED = "canceled"
    FAILED = "failed"


class GoalLogic(StrEnum):
    """How objectives combine into the goal (seed 002 ``goal_logic``)."""

    ALL = "all"
    ANY = "any"


class ObjectiveType(StrEnum):
    """The kinds of goal objective (seed 002 ``goal_spec.objectives[].type``)."""

    CONTACT = "contact"
    EMAIL = "email"
    AI = "ai"


class AiLabel(StrEnum):
    """Labels of the post-call AI evaluation (seed 002 ``AiObjective.label_in``)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    NEUTRAL = "neutral"


# An open attempt still holds the enrollment's turn: a resume must not add another.
OPEN_ATTEMPT_STATUSES: frozenset[AttemptStatus] = frozenset(
    {
        AttemptStatus.PENDING,
        AttemptStatus.QUEUED,
        AttemptStatus.DISPATCHING,
        AttemptStatus.IN_PROGRESS,
    }
)

# Terminal statuses are absorbing: no later event may change them.
TERMINAL_ATTEMPT_STATUSES: frozenset[AttemptStatus] = frozenset(
    {AttemptStatus.COMPLETED, AttemptStatus.FAILED, AttemptStatus.CANCELED}
)

# Only these outcomes earn another call; an answered call ends calling.
UNANSWERED_OUTCOMES: frozenset[Outcome] = frozenset(
    {Outcome.NO_ANSWER, Outcome.BUSY, Outcome.VOICEMAIL, Outcome.FAILED}
)

# Every state but ``active`` means: no work left for this enrollment, so a campaign
# whose enrollments are all closed can finish.
CLOSED_ENROLLMENT_STATES: frozenset[EnrollmentState] = frozenset(
    state for state in EnrollmentState if state is not EnrollmentState.ACTIVE
)
