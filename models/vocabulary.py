"""The project's words (GUIDE section 3), spelled once, as string enums.

Every value is the exact string the seeds use and the database stores, so a member
compares equal to it (``AttemptStatus("queued") is AttemptStatus.QUEUED``). The words
live here, at the bottom of the layers, because both the CHECK constraints of
``models/`` and the pure policies need them and ``models`` imports nothing of the
dialer; ``dialer.policies.vocabulary`` re-exports them for the rest of the code. This
module imports the standard library only (an import-linter contract keeps it so).

The CHECK tuples at the end are derived from the enums, never spelled again.
"""

from __future__ import annotations

from enum import StrEnum


class AttemptStatus(StrEnum):
    """Where a call attempt is in its life (seed 000 ``CallAttemptOut.status``)."""

    PENDING = "pending"
    QUEUED = "queued"
    DISPATCHING = "dispatching"
    # The placement's answer was lost and no lookup found the call: held, never re-sent,
    # until a webhook, a lookup or the deadline settles it (dialer.services.uncertain).
    UNCERTAIN = "uncertain"
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
    """A way to reach a customer: the call, or a message channel."""

    CALL = "call"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    SMS = "sms"


class FallbackChannel(StrEnum):
    """The message channel a campaign falls back to after unanswered calls.

    It is also the channel of a message-first campaign's first contact. Each value is
    a ``Channel`` value; a new fallback channel is a member here and in ``Channel``
    plus its message adapter (SMS: dialer.providers.twilio_sms).
    """

    WHATSAPP = Channel.WHATSAPP.value
    SMS = Channel.SMS.value


class RotationStrategy(StrEnum):
    """How the caller ID is chosen among a campaign's numbers (seed 003)."""

    RANDOM = "random"
    SEQUENTIAL = "sequential"
    ROUND_ROBIN = "round_robin"


class ScheduleType(StrEnum):
    """When a started campaign begins calling (seed 003 ``schedule_type``)."""

    IMMEDIATE = "immediate"
    SCHEDULED = "scheduled"


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


class EmailGoalCount(StrEnum):
    """What a campaign's email objectives count (``email_goal_counts``)."""

    ACCEPTED = "accepted"  # the mail server took it (SMTP 250, SendGrid "processed")
    DELIVERED = "delivered"  # the recipient's server took it (a delivery event)


class AiLabel(StrEnum):
    """Labels of the post-call AI evaluation (seed 002 ``AiObjective.label_in``)."""

    POSITIVE = "positive"
    NEGATIVE = "negative"
    NEUTRAL = "neutral"


class Direction(StrEnum):
    """Which way a call or message went."""

    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessagePurpose(StrEnum):
    """Why a message exists: a first contact, the fallback, a customer's reply, a notice."""

    FIRST_CONTACT = "first_contact"
    FALLBACK = "fallback"
    REPLY = "reply"
    NOTICE = "notice"


class MessageStatus(StrEnum):
    """Where a message is: pending -> queued -> sent -> delivered -> read, or failed/canceled.

    ``received`` is an inbound message's only status. ``unknown``: sent, but no status
    came within the deadline and the provider cannot be asked; a late status still
    moves it on (it ranks with ``sent``).
    """

    PENDING = "pending"
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    RECEIVED = "received"
    CANCELED = "canceled"
    UNKNOWN = "unknown"


class ContactEventKind(StrEnum):
    """A recorded fact goals are counted from."""

    ANSWERED_CALL = "answered_call"
    WHATSAPP_REPLY = "whatsapp_reply"
    SMS_REPLY = "sms_reply"  # its own kind, as WhatsApp's: a reply names its channel
    EMAIL_DELIVERED = "email_delivered"
    EMAIL_ACCEPTED = "email_accepted"
    AI_EVALUATION = "ai_evaluation"


class ProviderEventStatus(StrEnum):
    """What became of a webhook event in the inbox."""

    RECEIVED = "received"
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"
    REJECTED = "rejected"


class ProviderCircuit(StrEnum):
    """A voice provider's health, as failover sees it (dialer.policies.failover)."""

    CLOSED = "closed"  # healthy: placements go to it
    OPEN = "open"  # refusing: agents with a fallback use the fallback until the cool-down ends
    HALF_OPEN = "half_open"  # cool-down over: one probe placement may try it again


class ProviderRoute(StrEnum):
    """Where failover sends an agent's next placement."""

    PRIMARY = "primary"
    FALLBACK = "fallback"
    PROBE = "probe"  # the primary, as the one probe of a half-open circuit


# An open attempt still holds the enrollment's turn: a resume must not add another.
OPEN_ATTEMPT_STATUSES: frozenset[AttemptStatus] = frozenset(
    {
        AttemptStatus.PENDING,
        AttemptStatus.QUEUED,
        AttemptStatus.DISPATCHING,
        AttemptStatus.UNCERTAIN,
        AttemptStatus.IN_PROGRESS,
    }
)

# Claimed and not finished: what counts against a campaign's concurrency.
IN_FLIGHT_ATTEMPT_STATUSES: frozenset[AttemptStatus] = OPEN_ATTEMPT_STATUSES - {
    AttemptStatus.PENDING
}

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


class SuppressionSource(StrEnum):
    """Where the dialer itself puts a number on the account's do-not-contact list.

    Imported lists name their own source (``national_dnc``, ``state_fl``, ...).
    """

    STOP_REPLY = "stop_reply"  # a STOP-style reply on a message channel
    CALL_EXTRACTION = "call_extraction"  # the call's analysis says the person opted out
    MANUAL = "manual"  # an operator, through the API or the CLI


class StopSignal(StrEnum):
    """What a call's extraction may say that means "never call again" (issue 16).

    Read from the extraction's boolean keys of the same name (``opt_out: true``,
    ``wrong_number: true``); a campaign's ``retry_by_outcome.stop_outcomes`` lists them.
    """

    WRONG_NUMBER = "wrong_number"  # the person reached is not the customer
    OPT_OUT = "opt_out"  # the person asked not to be called again


class VoicemailAction(StrEnum):
    """What the agent does when a call reaches voicemail (a campaign's ``voicemail_action``)."""

    HANG_UP = "hang_up"
    LEAVE_MESSAGE = "leave_message"


class WebhookEventType(StrEnum):
    """What an account's webhook endpoint may subscribe to (issue 17)."""

    CAMPAIGN_STARTED = "campaign.started"
    CAMPAIGN_PAUSED = "campaign.paused"
    CAMPAIGN_COMPLETED = "campaign.completed"
    CONTACT_GOAL_MET = "contact.goal_met"
    CONTACT_CLOSED = "contact.closed"
    CALL_COMPLETED = "call.completed"


class WebhookDeliveryStatus(StrEnum):
    """Where one event's delivery to one endpoint is (issue 17)."""

    PENDING = "pending"  # not tried yet
    FAILED = "failed"  # the last try failed; tried again at next_attempt_at
    DELIVERED = "delivered"  # the endpoint answered 2xx
    DEAD = "dead"  # every try failed: no more


# Every channel but the call carries messages (and has a sender in ``channels``).
MESSAGE_CHANNEL_SET: frozenset[Channel] = frozenset(set(Channel) - {Channel.CALL})


def values(words: type[StrEnum] | frozenset[Channel]) -> tuple[str, ...]:
    """The stored strings of an enum or a set of members, in a stable order."""
    return tuple(sorted(str(word) for word in words))


# The words each CHECK constraint allows.
CAMPAIGN_STATUSES = values(CampaignStatus)
ATTEMPT_STATUSES = values(AttemptStatus)
OUTCOMES = values(Outcome)
ENROLLMENT_STATES = values(EnrollmentState)
GOAL_LOGICS = values(GoalLogic)
EMAIL_GOAL_COUNTS = values(EmailGoalCount)
FIRST_CONTACT_CHANNELS = (str(Channel.CALL), *values(FallbackChannel))
FALLBACK_CHANNELS = values(FallbackChannel)
ROTATION_STRATEGIES = values(RotationStrategy)
SCHEDULE_TYPES = values(ScheduleType)
CHANNEL_KINDS = values(MESSAGE_CHANNEL_SET)
MESSAGE_CHANNELS = values(MESSAGE_CHANNEL_SET)
MESSAGE_DIRECTIONS = values(Direction)
MESSAGE_PURPOSES = values(MessagePurpose)
MESSAGE_STATUSES = values(MessageStatus)
CONTACT_EVENT_KINDS = values(ContactEventKind)
CONTACT_CHANNELS = values(Channel)
PROVIDER_EVENT_STATUSES = values(ProviderEventStatus)
VOICEMAIL_ACTIONS = values(VoicemailAction)
WEBHOOK_EVENT_TYPES = values(WebhookEventType)
WEBHOOK_DELIVERY_STATUSES = values(WebhookDeliveryStatus)
