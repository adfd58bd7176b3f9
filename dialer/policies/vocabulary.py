"""The shared words of the dialer (GUIDE section 3), as string enums.

They are spelled once, in ``models.vocabulary`` (the bottom layer, standard library
only), because the CHECK constraints need them and ``models`` imports nothing of the
dialer. The rest of the code imports them from here: this is the domain's name for
them. Every value is the exact string the seeds use, so a member compares equal to
the string stored in the database or sent over the API.
"""

from __future__ import annotations

from models.vocabulary import (
    CLOSED_ENROLLMENT_STATES,
    IN_FLIGHT_ATTEMPT_STATUSES,
    MESSAGE_CHANNEL_SET,
    OPEN_ATTEMPT_STATUSES,
    TERMINAL_ATTEMPT_STATUSES,
    UNANSWERED_OUTCOMES,
    AiLabel,
    AttemptStatus,
    CampaignStatus,
    Channel,
    ContactEventKind,
    Direction,
    EmailGoalCount,
    EnrollmentState,
    FallbackChannel,
    GoalLogic,
    MessagePurpose,
    MessageStatus,
    ObjectiveType,
    Outcome,
    ProviderCallStatus,
    ProviderCircuit,
    ProviderEventStatus,
    ProviderRoute,
    RotationStrategy,
    ScheduleType,
    Segment,
    StopSignal,
    SuppressionSource,
    VoicemailAction,
    WebhookDeliveryStatus,
    WebhookEventType,
)

__all__ = [
    "CLOSED_ENROLLMENT_STATES",
    "IN_FLIGHT_ATTEMPT_STATUSES",
    "MESSAGE_CHANNEL_SET",
    "OPEN_ATTEMPT_STATUSES",
    "TERMINAL_ATTEMPT_STATUSES",
    "UNANSWERED_OUTCOMES",
    "AiLabel",
    "AttemptStatus",
    "CampaignStatus",
    "Channel",
    "ContactEventKind",
    "Direction",
    "EmailGoalCount",
    "EnrollmentState",
    "FallbackChannel",
    "GoalLogic",
    "MessagePurpose",
    "MessageStatus",
    "ObjectiveType",
    "Outcome",
    "ProviderCallStatus",
    "ProviderCircuit",
    "ProviderEventStatus",
    "ProviderRoute",
    "RotationStrategy",
    "ScheduleType",
    "Segment",
    "StopSignal",
    "SuppressionSource",
    "VoicemailAction",
    "WebhookDeliveryStatus",
    "WebhookEventType",
]
