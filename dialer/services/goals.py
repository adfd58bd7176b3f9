"""Goal evaluation for one enrollment: facts counted from recorded contact events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dialer.policies.goals import (
    AiObjective,
    ContactObjective,
    EmailObjective,
    GoalFacts,
    GoalResult,
    Objective,
    evaluate_goal,
)
from dialer.policies.vocabulary import (
    AiLabel,
    Channel,
    EmailGoalCount,
    EnrollmentState,
    ObjectiveType,
)
from dialer.services import batch_reads, webhooks
from dialer.services.attempts import cancel_open_work
from models import Campaign, Enrollment

# A goal met late (a WhatsApp reply after the calls ran out) still counts.
REOPENABLE_FOR_GOAL = (
    EnrollmentState.ACTIVE,
    EnrollmentState.UNRESOLVED,
    EnrollmentState.NOT_ANSWERED,
)


def objectives_of(
    goal_spec: dict[str, Any], email_counts: EmailGoalCount | str = EmailGoalCount.DELIVERED
) -> list[Objective]:
    """Campaign goal_spec JSON (validated at creation) -> policy objective values.

    ``email_counts`` is the campaign's ``email_goal_counts``: what its email objectives count.
    """
    out: list[Objective] = []
    for raw in goal_spec.get("objectives", []):
        kind = raw.get("type")
        if kind == ObjectiveType.CONTACT:
            channels = tuple(Channel(c) for c in raw.get("channels", []))
            out.append(ContactObjective(channels=channels, min_count=raw.get("min_count", 1)))
        elif kind == ObjectiveType.EMAIL:
            counts = EmailGoalCount(email_counts)
            out.append(EmailObjective(min_count=raw.get("min_count", 1), counts=counts))
        elif kind == ObjectiveType.AI:
            labels = tuple(AiLabel(label) for label in raw.get("label_in", []))
            out.append(AiObjective(label_in=labels, min_score=raw.get("min_score", 0.0)))
    return out


def goal_facts(session: Session, enrollment_id: uuid.UUID) -> GoalFacts:
    return batch_reads.goal_facts_of(session, [enrollment_id])[enrollment_id].frozen()


def evaluate_enrollment(session: Session, enrollment: Enrollment, campaign: Campaign) -> GoalResult:
    result = evaluate_goal(
        objectives_of(campaign.goal_spec, campaign.email_goal_counts),
        campaign.goal_logic,
        goal_facts(session, enrollment.id),
    )
    enrollment.goal_result = result.to_dict()
    return result


def close_if_goal_met(
    session: Session, enrollment: Enrollment, campaign: Campaign, now: datetime
) -> bool:
    """Re-evaluate after a new fact; a met goal closes the enrollment and cancels its work."""
    if enrollment.state not in REOPENABLE_FOR_GOAL:
        return False
    if not evaluate_enrollment(session, enrollment, campaign).met:
        return False
    enrollment.state = EnrollmentState.GOAL_MET
    enrollment.closed_at = now
    enrollment.close_reason = "goal met"
    cancel_open_work(session, now, enrollment_ids=[enrollment.id], reason="goal met")
    webhooks.announce(session, webhooks.contact_events(campaign.account_id, enrollment, now))
    return True
