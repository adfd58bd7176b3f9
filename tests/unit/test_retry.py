"""Retry plan: due times, exhaustion, the fallback channel, and the decision after a call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.errors import ValidationFailed
from dialer.policies.retry import (
    NextStep,
    OutcomeRetries,
    OutcomeRule,
    RetryPlan,
    decide_after_call,
    dispatch_backoff_seconds,
    fallback_due,
    first_call_after_message,
    max_call_attempts,
    next_call_due,
    stop_signals,
)
from dialer.policies.vocabulary import EnrollmentState, FallbackChannel, Outcome, StopSignal

T0 = datetime(2025, 3, 10, 14, 30, tzinfo=UTC)
WA = FallbackChannel.WHATSAPP
PLAN = RetryPlan(delays_minutes=(60, 240, 1440), fallback_after_attempts=2, fallback_channel=WA)


def plan(delays: tuple[int, ...] = (60, 240, 1440), after: int = 2, wa: bool = True) -> RetryPlan:
    channel = WA if wa else None
    return RetryPlan(delays_minutes=delays, fallback_after_attempts=after, fallback_channel=channel)


@pytest.mark.parametrize(
    ("delays", "expected"), [((), 1), ((0,), 2), ((60, 240, 1440), 4), ((5,) * 9, 10)]
)
def test_max_call_attempts_is_delays_plus_one(delays: tuple[int, ...], expected: int) -> None:
    assert max_call_attempts(plan(delays)) == expected


@pytest.mark.parametrize(
    ("attempts_made", "expected"),
    [
        (1, T0 + timedelta(minutes=60)),
        (2, T0 + timedelta(minutes=240)),
        (3, T0 + timedelta(minutes=1440)),
        (4, None),
        (5, None),
    ],
)
def test_next_call_due_uses_delay_of_the_attempt_just_made(
    attempts_made: int, expected: datetime | None
) -> None:
    assert next_call_due(PLAN, attempts_made, T0) == expected


def test_next_call_due_keeps_the_callers_timezone() -> None:
    rome = datetime(2025, 3, 10, 18, 0, tzinfo=ZoneInfo("Europe/Rome"))
    due = next_call_due(PLAN, 1, rome)
    assert due == rome + timedelta(hours=1)
    assert due is not None
    assert due.tzinfo == rome.tzinfo


def test_zero_delay_is_due_at_once() -> None:
    assert next_call_due(plan((0,)), 1, T0) == T0


def test_single_attempt_plan_is_exhausted_after_first_call() -> None:
    assert next_call_due(plan(()), 1, T0) is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"delays_minutes": (10, -1)}, "call_attempt_delays"),
        ({"delays_minutes": (10, 2.5)}, "call_attempt_delays"),
        ({"delays_minutes": (True,)}, "call_attempt_delays"),
        ({"fallback_after_attempts": 0}, "whatsapp_after_attempts"),
        ({"fallback_after_attempts": -3}, "whatsapp_after_attempts"),
    ],
)
def test_invalid_plan_is_rejected_naming_the_setting(kwargs: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {
        "delays_minutes": (60,),
        "fallback_after_attempts": 3,
        "fallback_channel": WA,
    }
    with pytest.raises(ValidationFailed) as info:
        RetryPlan(**(values | kwargs))
    assert info.value.field == field


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValidationFailed) as info:
        next_call_due(PLAN, 1, datetime(2025, 3, 10, 14, 30))
    assert info.value.field == "finished_at"


def test_attempts_made_must_count_the_call_that_ended() -> None:
    with pytest.raises(ValidationFailed):
        next_call_due(PLAN, 0, T0)


@pytest.mark.parametrize(
    ("unanswered", "sent", "available", "expected"),
    [
        (1, False, True, False),
        (2, False, True, True),
        (3, False, True, True),
        (2, True, True, False),
        (2, False, False, False),
        (0, False, True, False),
    ],
)
def test_fallback_due(unanswered: int, sent: bool, available: bool, expected: bool) -> None:
    assert fallback_due(plan(wa=available), unanswered, sent) is (WA if expected else None)


def test_first_call_after_message_waits_first_delay() -> None:
    assert first_call_after_message(PLAN, T0) == T0 + timedelta(minutes=60)


def test_first_call_after_message_without_delays_is_due_at_once() -> None:
    assert first_call_after_message(plan(()), T0) == T0


def decide(**overrides: Any) -> NextStep:
    values: dict[str, Any] = {
        "outcome": Outcome.NO_ANSWER,
        "attempts_made": 1,
        "unanswered_calls": 1,
        "fallback_sent": False,
        "goal_met": False,
        "permanent_failure": False,
        "finished_at": T0,
    }
    return decide_after_call(PLAN, **(values | overrides))


@pytest.mark.parametrize(
    ("overrides", "close_as", "next_call_at", "send_fallback"),
    [
        # first unanswered call: retry after delays[0], fallback not yet due
        ({}, None, T0 + timedelta(minutes=60), False),
        # second unanswered call: retry continues and the fallback fires
        (
            {"attempts_made": 2, "unanswered_calls": 2, "outcome": Outcome.BUSY},
            None,
            T0 + timedelta(minutes=240),
            True,
        ),
        # fallback already sent: only once
        (
            {"attempts_made": 3, "unanswered_calls": 3, "fallback_sent": True},
            None,
            T0 + timedelta(minutes=1440),
            False,
        ),
        # last attempt unanswered: close as not_answered
        (
            {"attempts_made": 4, "unanswered_calls": 4, "fallback_sent": True},
            EnrollmentState.NOT_ANSWERED,
            None,
            False,
        ),
        # voicemail and failed count as unanswered and are retried
        ({"outcome": Outcome.VOICEMAIL}, None, T0 + timedelta(minutes=60), False),
        ({"outcome": Outcome.FAILED}, None, T0 + timedelta(minutes=60), False),
        # answered, goal not met: unresolved, never call again
        (
            {"outcome": Outcome.ANSWERED, "unanswered_calls": 0},
            EnrollmentState.UNRESOLVED,
            None,
            False,
        ),
        # answered after enough unanswered calls: no fallback message to a reached customer
        (
            {"outcome": Outcome.ANSWERED, "attempts_made": 3, "unanswered_calls": 2},
            EnrollmentState.UNRESOLVED,
            None,
            False,
        ),
        # goal met (e.g. by a WhatsApp reply) wins over an unanswered call
        ({"goal_met": True, "unanswered_calls": 2}, EnrollmentState.GOAL_MET, None, False),
        ({"goal_met": True, "outcome": Outcome.ANSWERED}, EnrollmentState.GOAL_MET, None, False),
        # permanent failure closes as failed with no message
        (
            {"outcome": Outcome.FAILED, "permanent_failure": True, "unanswered_calls": 2},
            EnrollmentState.FAILED,
            None,
            False,
        ),
        # rejected: not retried, closed as not_answered
        ({"outcome": Outcome.REJECTED}, EnrollmentState.NOT_ANSWERED, None, False),
        # canceled: the retry plan leaves the enrollment alone
        ({"outcome": Outcome.CANCELED}, None, None, False),
    ],
)
def test_decide_after_call(
    overrides: dict[str, Any],
    close_as: EnrollmentState | None,
    next_call_at: datetime | None,
    send_fallback: bool,
) -> None:
    step = decide(**overrides)
    assert (step.close_as, step.next_call_at, step.send_fallback) == (
        close_as,
        next_call_at,
        WA if send_fallback else None,
    )
    assert step.reason


def test_fallback_fires_on_the_last_unanswered_call() -> None:
    short = plan((30,), after=2)
    step = decide_after_call(
        short,
        outcome=Outcome.NO_ANSWER,
        attempts_made=2,
        unanswered_calls=2,
        fallback_sent=False,
        goal_met=False,
        permanent_failure=False,
        finished_at=T0,
    )
    assert step.close_as is EnrollmentState.NOT_ANSWERED
    assert step.send_fallback is FallbackChannel.WHATSAPP


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    st.integers(min_value=1, max_value=20),
)
def test_calls_stop_exactly_at_max_attempts(delays: list[int], attempts_made: int) -> None:
    retry_plan = plan(tuple(delays))
    due = next_call_due(retry_plan, attempts_made, T0)
    if attempts_made < max_call_attempts(retry_plan):
        assert due == T0 + timedelta(minutes=delays[attempts_made - 1])
    else:
        assert due is None


@given(st.integers(min_value=1, max_value=10), st.integers(min_value=1, max_value=10))
def test_unanswered_sequence_sends_the_fallback_exactly_once(calls: int, after: int) -> None:
    retry_plan = plan((15,) * (calls - 1), after=after)
    sent = 0
    for made in range(1, calls + 1):
        step = decide_after_call(
            retry_plan,
            outcome=Outcome.NO_ANSWER,
            attempts_made=made,
            unanswered_calls=made,
            fallback_sent=sent > 0,
            goal_met=False,
            permanent_failure=False,
            finished_at=T0,
        )
        sent += step.send_fallback is not None
        assert (step.close_as is None) == (made < calls)
    assert sent == (1 if calls >= after else 0)


def test_the_dispatch_backoff_grows_with_the_redeliveries_it_is_told() -> None:
    # Each re-send is a new Celery task (request.retries stays 0): the count is passed on.
    waits = [dispatch_backoff_seconds(n, 0.0, 1800.0) for n in range(7)]
    assert waits == [2, 5, 15, 30, 60, 60, 60]
    assert sum(waits[:5]) == 112  # five re-sends now span ~2 minutes, not ~13 s


def test_the_dispatch_backoff_honours_retry_after_and_the_ceiling() -> None:
    assert dispatch_backoff_seconds(0, 7.5, 1800.0) == 7.5
    assert dispatch_backoff_seconds(4, 7.5, 1800.0) == 60
    assert dispatch_backoff_seconds(4, 5000.0, 1800.0) == 1800.0
    assert dispatch_backoff_seconds(-1, 0.0, 1800.0) == 2


# ------------------------------------------------------------------ retry by outcome

BUSY_FAST = OutcomeRetries({Outcome.BUSY: OutcomeRule(delays_minutes=(5, 15), max_tries=3)})


def decide_with(retries: OutcomeRetries, **overrides: Any) -> NextStep:
    tuned = RetryPlan(PLAN.delays_minutes, 2, WA, retries)
    values: dict[str, Any] = {
        "outcome": Outcome.NO_ANSWER,
        "attempts_made": 1,
        "unanswered_calls": 1,
        "fallback_sent": False,
        "goal_met": False,
        "permanent_failure": False,
        "finished_at": T0,
    }
    return decide_after_call(tuned, **(values | overrides))


_CASES = test_decide_after_call.pytestmark[0].args[1]  # the table above


@pytest.mark.parametrize(("overrides", "close_as", "next_call_at", "send_fallback"), _CASES)
def test_the_default_outcome_retries_decide_exactly_as_the_plain_plan(
    overrides: dict[str, Any],
    close_as: EnrollmentState | None,
    next_call_at: datetime | None,
    send_fallback: bool,
) -> None:
    spelled_out = OutcomeRetries({}, retry_voicemail=True, stop_outcomes=frozenset(StopSignal))
    for retries in (OutcomeRetries(), spelled_out):
        assert decide_with(retries, **overrides) == decide(**overrides)
    assert decide(**overrides).close_as == close_as


@pytest.mark.parametrize(
    ("overrides", "close_as", "after_minutes"),
    [
        # busy uses its own delays, by how many calls were busy, the last repeating
        ({"outcome": Outcome.BUSY, "outcome_calls": 1}, None, 5),
        ({"outcome": Outcome.BUSY, "outcome_calls": 2, "attempts_made": 2}, None, 15),
        # max_tries reached: closed although the campaign's attempts are not used up
        (
            {"outcome": Outcome.BUSY, "outcome_calls": 3, "attempts_made": 3},
            EnrollmentState.NOT_ANSWERED,
            None,
        ),
        # other outcomes keep call_attempt_delays by attempt number
        ({"outcome": Outcome.NO_ANSWER, "attempts_made": 2}, None, 240),
        ({"outcome": Outcome.VOICEMAIL}, None, 60),
        # the campaign's len(delays) + 1 still caps the round
        (
            {"outcome": Outcome.BUSY, "outcome_calls": 2, "attempts_made": 4},
            EnrollmentState.NOT_ANSWERED,
            None,
        ),
    ],
)
def test_busy_with_its_own_delays_and_limit(
    overrides: dict[str, Any], close_as: EnrollmentState | None, after_minutes: int | None
) -> None:
    step = decide_with(BUSY_FAST, **overrides)
    expected = None if after_minutes is None else T0 + timedelta(minutes=after_minutes)
    assert (step.close_as, step.next_call_at) == (close_as, expected)


@pytest.mark.parametrize(
    ("outcome", "close_as"),
    [
        (Outcome.VOICEMAIL, EnrollmentState.NOT_ANSWERED),
        (Outcome.NO_ANSWER, None),
        (Outcome.BUSY, None),
        (Outcome.FAILED, None),
    ],
)
def test_voicemail_not_retried_closes_on_the_first_voicemail(
    outcome: Outcome, close_as: EnrollmentState | None
) -> None:
    step = decide_with(OutcomeRetries(retry_voicemail=False), outcome=outcome)
    assert step.close_as == close_as
    assert (step.next_call_at is None) == (close_as is not None)


def test_voicemail_not_retried_still_sends_the_due_fallback() -> None:
    step = decide_with(
        OutcomeRetries(retry_voicemail=False),
        outcome=Outcome.VOICEMAIL,
        attempts_made=2,
        unanswered_calls=2,
    )
    assert (step.close_as, step.send_fallback) == (EnrollmentState.NOT_ANSWERED, WA)


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({Outcome.ANSWERED: OutcomeRule(max_tries=1)}, "retry_by_outcome.answered"),
        ({Outcome.BUSY: OutcomeRule(max_tries=0)}, "retry_by_outcome.busy.max_tries"),
        ({Outcome.BUSY: OutcomeRule(delays_minutes=())}, "retry_by_outcome.busy.delays_minutes"),
        (
            {Outcome.FAILED: OutcomeRule(delays_minutes=(-1,))},
            "retry_by_outcome.failed.delays_minutes",
        ),
    ],
)
def test_invalid_outcome_rules_name_the_setting(
    rules: dict[Outcome, OutcomeRule], field: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        OutcomeRetries(rules)
    assert info.value.field == field


def test_the_opt_out_cannot_be_switched_off() -> None:
    with pytest.raises(ValidationFailed) as info:
        OutcomeRetries(stop_outcomes=frozenset({StopSignal.WRONG_NUMBER}))
    assert info.value.field == "retry_by_outcome.stop_outcomes"


# ------------------------------------------------------------------ never again

OPT, WRONG = StopSignal.OPT_OUT, StopSignal.WRONG_NUMBER
ONLY_OPT_OUT = OutcomeRetries(stop_outcomes=frozenset({OPT}))


@pytest.mark.parametrize(
    ("retries", "overrides", "close_as"),
    [
        # an opt-out wins over everything, the goal included
        (OutcomeRetries(), {"signals": frozenset({OPT})}, EnrollmentState.OPTED_OUT),
        (
            OutcomeRetries(),
            {"signals": frozenset({OPT}), "goal_met": True, "outcome": Outcome.ANSWERED},
            EnrollmentState.OPTED_OUT,
        ),
        (OutcomeRetries(), {"signals": frozenset({OPT, WRONG})}, EnrollmentState.OPTED_OUT),
        # a wrong number closes as failed, a met goal still counts as met
        (OutcomeRetries(), {"signals": frozenset({WRONG})}, EnrollmentState.FAILED),
        (
            OutcomeRetries(),
            {"signals": frozenset({WRONG}), "outcome": Outcome.ANSWERED},
            EnrollmentState.FAILED,
        ),
        (
            OutcomeRetries(),
            {"signals": frozenset({WRONG}), "goal_met": True},
            EnrollmentState.GOAL_MET,
        ),
        # a campaign that does not stop on wrong numbers retries as usual
        (ONLY_OPT_OUT, {"signals": frozenset({WRONG})}, None),
        (
            ONLY_OPT_OUT,
            {"signals": frozenset({WRONG}), "outcome": Outcome.ANSWERED},
            EnrollmentState.UNRESOLVED,
        ),
    ],
)
def test_never_again_signals_close_with_no_call_and_no_fallback(
    retries: OutcomeRetries, overrides: dict[str, Any], close_as: EnrollmentState | None
) -> None:
    # Fallback due (second unanswered call) unless the enrollment is closed for good.
    step = decide_with(retries, attempts_made=2, unanswered_calls=2, **overrides)
    assert step.close_as == close_as
    if close_as in (EnrollmentState.OPTED_OUT, EnrollmentState.FAILED):
        assert (step.next_call_at, step.send_fallback) == (None, None)


@pytest.mark.parametrize(
    ("extraction", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"opt_out": True}, {OPT}),
        ({"opt_out": "yes", "wrong_number": "TRUE "}, {OPT, WRONG}),
        ({"wrong_number": True, "opt_out": False}, {WRONG}),
        ({"opt_out": 1, "wrong_number": "no"}, set()),  # only true or "true"/"yes"
        ({"opt_out": None, "summary": "opt_out"}, set()),
    ],
)
def test_stop_signals_read_the_extractions_boolean_keys(
    extraction: dict[str, object] | None, expected: set[StopSignal]
) -> None:
    assert stop_signals(extraction) == expected
