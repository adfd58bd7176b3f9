"""Goal evaluation: has an enrollment met its campaign's goal objectives?

Objectives follow seed 002 ``goal_spec`` (the pydantic schema lives elsewhere and
converts to the plain values below):

- contact: answered calls + WhatsApp replies + SMS replies, counted on the listed
  channels (empty list = call, whatsapp and sms), >= ``min_count``;
- email: emails delivered >= ``min_count``, or emails accepted by the mail server
  when the campaign's ``email_goal_counts`` is ``accepted`` (``EmailObjective.counts``);
- ai: the post-call evaluation of the latest answered call has a label in
  ``label_in`` (empty = any label) and a score >= ``min_score``.

``goal_logic`` all/any combines them. No objectives means "contacted once on any
channel": answered calls + WhatsApp and SMS replies + emails delivered >= 1.

Each objective reports why it held or not, so users can see the reasoning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dialer.errors import ValidationFailed
from dialer.policies.vocabulary import AiLabel, Channel, EmailGoalCount, GoalLogic, ObjectiveType

_CONTACT_CHANNELS: tuple[Channel, ...] = (Channel.CALL, Channel.WHATSAPP, Channel.SMS)
_ANY_CHANNEL_TYPE = "any_contact"


@dataclass(frozen=True, slots=True)
class ContactObjective:
    """Reached the customer ``min_count`` times on the listed channels."""

    channels: tuple[Channel, ...] = ()
    min_count: int = 1

    def __post_init__(self) -> None:
        for channel in self.channels:
            if channel not in _CONTACT_CHANNELS:
                raise ValidationFailed(
                    "goal_spec.objectives.channels",
                    f"contact channel must be call, whatsapp or sms, got {channel!r}",
                )
        _require_min_count(self.min_count)


@dataclass(frozen=True, slots=True)
class EmailObjective:
    """Delivered (or, with ``counts`` accepted, handed over) ``min_count`` emails."""

    min_count: int = 1
    counts: EmailGoalCount = EmailGoalCount.DELIVERED

    def __post_init__(self) -> None:
        _require_min_count(self.min_count)


@dataclass(frozen=True, slots=True)
class AiObjective:
    """The latest answered call was evaluated with an accepted label and enough score."""

    label_in: tuple[AiLabel, ...] = ()
    min_score: float = 0.0

    def __post_init__(self) -> None:
        for label in self.label_in:
            if label not in tuple(AiLabel):
                known = ", ".join(AiLabel)
                raise ValidationFailed(
                    "goal_spec.objectives.label_in", f"unknown label {label!r}; known: {known}"
                )
        if not 0.0 <= self.min_score <= 1.0:
            raise ValidationFailed(
                "goal_spec.objectives.min_score", f"must be between 0 and 1, got {self.min_score}"
            )


Objective = ContactObjective | EmailObjective | AiObjective


@dataclass(frozen=True, slots=True)
class GoalFacts:
    """What happened with one enrollment, counted from recorded events."""

    answered_calls: int
    whatsapp_replies: int
    emails_delivered: int
    latest_ai_label: str | None
    latest_ai_score: float | None
    sms_replies: int = 0
    emails_accepted: int = 0  # accepted by the mail server; a delivered one was accepted too


@dataclass(frozen=True, slots=True)
class ObjectiveResult:
    """One objective's verdict and the reason a user can read."""

    objective_type: str
    held: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.objective_type, "held": self.held, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class GoalResult:
    """The goal's verdict with each objective's result, ready to store as JSON."""

    met: bool
    logic: GoalLogic
    objectives: tuple[ObjectiveResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "met": self.met,
            "logic": str(self.logic),
            "objectives": [result.to_dict() for result in self.objectives],
        }


def evaluate_goal(
    objectives: Sequence[Objective], logic: GoalLogic | str, facts: GoalFacts
) -> GoalResult:
    """Evaluate every objective and combine them with ``logic`` (all / any)."""
    goal_logic = _parse_logic(logic)
    if not objectives:
        results: tuple[ObjectiveResult, ...] = (_evaluate_any_contact(facts),)
    else:
        results = tuple(evaluate_objective(objective, facts) for objective in objectives)
    combine = all if goal_logic is GoalLogic.ALL else any
    return GoalResult(combine(r.held for r in results), goal_logic, results)


def evaluate_objective(objective: Objective, facts: GoalFacts) -> ObjectiveResult:
    """One objective's verdict."""
    if isinstance(objective, ContactObjective):
        return _evaluate_contact(objective, facts)
    if isinstance(objective, EmailObjective):
        return _evaluate_email(objective, facts)
    return _evaluate_ai(objective, facts)


def _evaluate_contact(objective: ContactObjective, facts: GoalFacts) -> ObjectiveResult:
    channels = objective.channels or _CONTACT_CHANNELS
    count = 0
    if Channel.CALL in channels:
        count += facts.answered_calls
    if Channel.WHATSAPP in channels:
        count += facts.whatsapp_replies
    if Channel.SMS in channels:
        count += facts.sms_replies
    held = count >= objective.min_count
    names = ", ".join(dict.fromkeys(channels))  # keep order, drop duplicates
    reason = f"{count} of {objective.min_count} contacts on {names}"
    return ObjectiveResult(ObjectiveType.CONTACT, held, reason)


def _evaluate_email(objective: EmailObjective, facts: GoalFacts) -> ObjectiveResult:
    if objective.counts is EmailGoalCount.ACCEPTED:
        count, word = max(facts.emails_accepted, facts.emails_delivered), "accepted"
    else:
        count, word = facts.emails_delivered, "delivered"
    held = count >= objective.min_count
    reason = f"{count} of {objective.min_count} emails {word}"
    return ObjectiveResult(ObjectiveType.EMAIL, held, reason)


def _evaluate_ai(objective: AiObjective, facts: GoalFacts) -> ObjectiveResult:
    label, score = facts.latest_ai_label, facts.latest_ai_score
    accepted = "[" + (", ".join(objective.label_in) or "any") + "]"
    if label is None:
        return ObjectiveResult(ObjectiveType.AI, False, "no answered call evaluated yet")
    if objective.label_in and label not in objective.label_in:
        reason = f"latest AI label {label!r} not in {accepted}"
        return ObjectiveResult(ObjectiveType.AI, False, reason)
    # A missing score only passes when no score is required (min_score 0).
    if score is None:
        held = objective.min_score <= 0.0
        reason = (
            f"latest AI label {label!r} in {accepted}, no score (min {objective.min_score:.2f})"
        )
        return ObjectiveResult(ObjectiveType.AI, held, reason)
    held = score >= objective.min_score
    relation = ">=" if held else "<"
    reason = (
        f"latest AI label {label!r} in {accepted}, "
        f"score {score:.2f} {relation} {objective.min_score:.2f}"
    )
    return ObjectiveResult(ObjectiveType.AI, held, reason)


def _evaluate_any_contact(facts: GoalFacts) -> ObjectiveResult:
    replies = facts.whatsapp_replies + facts.sms_replies
    count = facts.answered_calls + replies + facts.emails_delivered
    reason = f"{count} of 1 contacts on any channel (call, whatsapp, sms, email)"
    return ObjectiveResult(_ANY_CHANNEL_TYPE, count >= 1, reason)


def _parse_logic(logic: GoalLogic | str) -> GoalLogic:
    try:
        return GoalLogic(logic)
    except ValueError:
        raise ValidationFailed("goal_logic", f"must be all or any, got {logic!r}") from None


def _require_min_count(min_count: int) -> None:
    # min_count 0 would make the objective hold before anything happened.
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValidationFailed(
            "goal_spec.objectives.min_count", f"must be an integer >= 1, got {min_count!r}"
        )
