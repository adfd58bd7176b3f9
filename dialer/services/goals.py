"""Goal evaluation for one enrollment: facts counted from recorded contact events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
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
from dialer.policies.vocabulary import AiLabel, Channel
from dialer.services.attempts import cancel_open_work
from models import Campaign, ContactEvent, Enrollment

# A goal met late (a WhatsApp reply after the calls ran out) still counts.
REOPENABLE_FOR_GOAL = ("active", "unresolved", "not_answered")


def objectives_of(goal_spec: dict[str, Any]) -> list[Objective]:
    """Campaign goal_spec JSON (validated at creation) -> policy objective values."""
    out: list[Objective] = []
    for raw in goal_spec.get("objectives", []):
        kind = raw.get("type")
        if kind == "contact":
            channels = tuple(Channel(c) for c in raw.get("channels", []))
            out.append(ContactObjective(channels=channels, min_count=raw.get("min_count", 1)))
        elif kind == "email":
            out.append(EmailObjective(min_count=raw.get("min_count", 1)))
        elif kind == "ai":
            labels = tuple(AiLabel(label) for label in raw.get("label_in", []))
            out.append(AiObjective(label_in=labels, min_score=raw.get("min_score", 0.0)))
    return out


def goal_facts(session: Session, enrollment_id: Any) -> GoalFacts:
    counts = dict(
        session.execute(
            select(ContactEvent.kind, func.count())
            .where(ContactEvent.enrollment_id == enrollment_id)
            .group_by(ContactEvent.kind)
        ).all()
    )
    latest = session.execute(
        select(ContactEvent.data)
        .where(ContactEvent.enrollment_id == enrollment_id, ContactEvent.kind == "ai_evaluation")
        .order_by(ContactEvent.occurred_at.desc(), ContactEvent.id.desc())
        .limit(1)
    ).scalar()
    return GoalFacts(
        answered_calls=counts.get("answered_call", 0),
        whatsapp_replies=counts.get("whatsapp_reply", 0),
        emails_delivered=counts.get("email_delivered", 0),
        latest_ai_label=(latest or {}).get("label"),
        latest_ai_score=(latest or {}).get("score"),
    )


def evaluate_enrollment(session: Session, enrollment: Enrollment, campaign: Campaign) -> GoalResult:
    result = evaluate_goal(
        objectives_of(campaign.goal_spec), campaign.goal_logic, goal_facts(session, enrollment.id)
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
    enrollment.state = "goal_met"
    enrollment.closed_at = now
    enrollment.close_reason = "goal met"
    cancel_open_work(session, now, enrollment_ids=[enrollment.id], reason="goal met")
    return True
