"""The status words the CHECK constraints allow.

models/ imports SQLAlchemy only, so the words are spelled here; a unit test keeps
them equal to the StrEnums in dialer.policies.vocabulary.
"""

CAMPAIGN_STATUSES = ("draft", "running", "paused", "done")
ATTEMPT_STATUSES = (
    "pending",
    "queued",
    "dispatching",
    "in_progress",
    "completed",
    "failed",
    "canceled",
)
OPEN_ATTEMPT_STATUSES = ("pending", "queued", "dispatching", "in_progress")
IN_FLIGHT_ATTEMPT_STATUSES = ("queued", "dispatching", "in_progress")
OUTCOMES = ("answered", "no_answer", "busy", "voicemail", "rejected", "failed", "canceled")
ENROLLMENT_STATES = (
    "active",
    "goal_met",
    "unresolved",
    "not_answered",
    "failed",
    "opted_out",
    "missing_contact",
)
GOAL_LOGICS = ("all", "any")
FIRST_CONTACT_CHANNELS = ("call", "whatsapp")
ROTATION_STRATEGIES = ("random", "sequential", "round_robin")
SCHEDULE_TYPES = ("immediate", "scheduled")
CHANNEL_KINDS = ("whatsapp", "email")
MESSAGE_CHANNELS = ("whatsapp", "email")
MESSAGE_DIRECTIONS = ("outbound", "inbound")
MESSAGE_PURPOSES = ("first_contact", "fallback", "reply", "notice")
MESSAGE_STATUSES = (
    "pending",
    "queued",
    "sent",
    "delivered",
    "read",
    "failed",
    "received",
    "canceled",
)
CONTACT_EVENT_KINDS = ("answered_call", "whatsapp_reply", "email_delivered", "ai_evaluation")
CONTACT_CHANNELS = ("call", "whatsapp", "email")
PROVIDER_EVENT_STATUSES = ("received", "applied", "duplicate", "ignored", "rejected")
