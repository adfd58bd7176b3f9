"""Goal objectives: each kind held / not held, all / any, and readable reasons."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.errors import ValidationFailed
from dialer.policies.goals import (
    AiObjective,
    ContactObjective,
    EmailObjective,
    GoalFacts,
    Objective,
    evaluate_goal,
    evaluate_objective,
)
from dialer.policies.vocabulary import AiLabel, Channel, EmailGoalCount, GoalLogic


def facts(
    answered: int = 0,
    replies: int = 0,
    emails: int = 0,
    label: str | None = None,
    score: float | None = None,
    accepted: int = 0,
) -> GoalFacts:
    return GoalFacts(
        answered_calls=answered,
        whatsapp_replies=replies,
        emails_delivered=emails,
        latest_ai_label=label,
        latest_ai_score=score,
        emails_accepted=accepted,
    )


CALL = Channel.CALL
ACCEPTED = EmailGoalCount.ACCEPTED
WA = Channel.WHATSAPP
POS, NEG, NEU = AiLabel.POSITIVE, AiLabel.NEGATIVE, AiLabel.NEUTRAL


@pytest.mark.parametrize(
    ("objective", "goal_facts", "held", "reason"),
    [
        (ContactObjective(), facts(answered=1), True, "1 of 1 contacts on call, whatsapp, sms"),
        (ContactObjective(), facts(replies=1), True, "1 of 1 contacts on call, whatsapp, sms"),
        (ContactObjective(), facts(emails=5), False, "0 of 1 contacts on call, whatsapp, sms"),
        (ContactObjective((CALL,)), facts(replies=3), False, "0 of 1 contacts on call"),
        (ContactObjective((CALL,), 2), facts(answered=2), True, "2 of 2 contacts on call"),
        (ContactObjective((WA,)), facts(answered=4), False, "0 of 1 contacts on whatsapp"),
        (
            ContactObjective((CALL, WA)),
            facts(answered=2),
            True,
            "2 of 1 contacts on call, whatsapp",
        ),
        (ContactObjective((CALL, WA), 3), facts(1, 1), False, "2 of 3 contacts on call, whatsapp"),
        (EmailObjective(), facts(emails=1), True, "1 of 1 emails delivered"),
        (EmailObjective(), facts(accepted=3), False, "0 of 1 emails delivered"),
        (EmailObjective(counts=ACCEPTED), facts(accepted=1), True, "1 of 1 emails accepted"),
        (EmailObjective(2, ACCEPTED), facts(accepted=1), False, "1 of 2 emails accepted"),
        # a delivery reported without its acceptance still was accepted
        (EmailObjective(counts=ACCEPTED), facts(emails=1), True, "1 of 1 emails accepted"),
        (EmailObjective(2), facts(emails=1, answered=9), False, "1 of 2 emails delivered"),
        (AiObjective((POS,)), facts(label="positive", score=0.1), True, None),
        (
            AiObjective((POS,)),
            facts(label="negative", score=0.9),
            False,
            "latest AI label 'negative' not in [positive]",
        ),
        (AiObjective((POS, NEU), 0.5), facts(label="neutral", score=0.5), True, None),
        (
            AiObjective((POS,), 0.7),
            facts(label="positive", score=0.69),
            False,
            "latest AI label 'positive' in [positive], score 0.69 < 0.70",
        ),
        (AiObjective(), facts(label="negative", score=0.0), True, None),
        (AiObjective(), facts(), False, "no answered call evaluated yet"),
        (AiObjective((POS,)), facts(answered=3), False, "no answered call evaluated yet"),
        (AiObjective((POS,)), facts(label="positive"), True, None),
        (AiObjective((POS,), 0.2), facts(label="positive"), False, None),
    ],
)
def test_each_objective_kind(
    objective: Objective, goal_facts: GoalFacts, held: bool, reason: str | None
) -> None:
    result = evaluate_objective(objective, goal_facts)
    assert result.held is held
    if reason is not None:
        assert result.reason == reason


def test_objective_type_is_reported() -> None:
    types = [
        evaluate_objective(o, facts()).objective_type
        for o in (ContactObjective(), EmailObjective(), AiObjective())
    ]
    assert types == ["contact", "email", "ai"]


MIXED: list[Objective] = [ContactObjective((CALL,)), EmailObjective()]


@pytest.mark.parametrize(
    ("logic", "goal_facts", "met"),
    [
        (GoalLogic.ALL, facts(answered=1, emails=1), True),
        (GoalLogic.ALL, facts(answered=1), False),
        (GoalLogic.ALL, facts(emails=1), False),
        (GoalLogic.ALL, facts(), False),
        (GoalLogic.ANY, facts(answered=1, emails=1), True),
        (GoalLogic.ANY, facts(answered=1), True),
        (GoalLogic.ANY, facts(emails=1), True),
        (GoalLogic.ANY, facts(), False),
        ("any", facts(emails=1), True),
        ("all", facts(emails=1), False),
    ],
)
def test_all_and_any(logic: GoalLogic | str, goal_facts: GoalFacts, met: bool) -> None:
    result = evaluate_goal(MIXED, logic, goal_facts)
    assert result.met is met
    assert result.logic == logic
    assert [r.objective_type for r in result.objectives] == ["contact", "email"]


@pytest.mark.parametrize(
    ("goal_facts", "met"),
    [
        (facts(), False),
        (facts(answered=1), True),
        (facts(replies=1), True),
        (facts(emails=1), True),
        (facts(label="positive", score=1.0), False),
    ],
)
@pytest.mark.parametrize("logic", list(GoalLogic))
def test_empty_objectives_mean_contacted_once_on_any_channel(
    goal_facts: GoalFacts, met: bool, logic: GoalLogic
) -> None:
    result = evaluate_goal([], logic, goal_facts)
    assert result.met is met
    assert len(result.objectives) == 1
    assert "any channel" in result.objectives[0].reason


def test_to_dict_is_json_ready() -> None:
    result = evaluate_goal([AiObjective((POS,))], GoalLogic.ALL, facts(label="negative", score=1))
    stored = json.loads(json.dumps(result.to_dict()))
    assert stored == {
        "met": False,
        "logic": "all",
        "objectives": [
            {
                "type": "ai",
                "held": False,
                "reason": "latest AI label 'negative' not in [positive]",
            }
        ],
    }


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ContactObjective(min_count=0), "goal_spec.objectives.min_count"),
        (lambda: EmailObjective(min_count=-1), "goal_spec.objectives.min_count"),
        (lambda: ContactObjective((Channel.EMAIL,)), "goal_spec.objectives.channels"),
        (lambda: AiObjective(("happy",)), "goal_spec.objectives.label_in"),  # type: ignore[arg-type]
        (lambda: AiObjective(min_score=1.5), "goal_spec.objectives.min_score"),
        (lambda: AiObjective(min_score=-0.1), "goal_spec.objectives.min_score"),
        (lambda: evaluate_goal([], "most", facts()), "goal_logic"),
    ],
)
def test_invalid_objectives_are_rejected(build: Callable[[], object], field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        build()
    assert info.value.field == field


counts = st.integers(min_value=0, max_value=5)
objective_st = st.one_of(
    st.builds(
        ContactObjective,
        st.lists(st.sampled_from([CALL, WA]), max_size=2).map(tuple),
        st.integers(min_value=1, max_value=5),
    ),
    st.builds(EmailObjective, st.integers(min_value=1, max_value=5)),
    st.builds(
        AiObjective,
        st.lists(st.sampled_from(list(AiLabel)), max_size=3).map(tuple),
        st.floats(min_value=0, max_value=1),
    ),
)
facts_st = st.builds(
    GoalFacts,
    counts,
    counts,
    counts,
    st.one_of(st.none(), st.sampled_from(list(AiLabel)).map(str)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=1)),
)


@given(st.lists(objective_st, min_size=1, max_size=4), facts_st)
def test_all_implies_any_and_matches_objective_results(
    objectives: list[Objective], goal_facts: GoalFacts
) -> None:
    all_result = evaluate_goal(objectives, GoalLogic.ALL, goal_facts)
    any_result = evaluate_goal(objectives, GoalLogic.ANY, goal_facts)
    held = [evaluate_objective(o, goal_facts).held for o in objectives]
    assert all_result.met is all(held)
    assert any_result.met is any(held)
    assert [r.held for r in all_result.objectives] == held
