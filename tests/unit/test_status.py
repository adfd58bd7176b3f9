"""Provider statuses map onto attempts monotonically; terminal states are absorbing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.errors import ValidationFailed
from dialer.policies.status import (
    StatusChange,
    apply_provider_status,
    is_terminal,
    parse_provider_status,
    status_rank,
)
from dialer.policies.vocabulary import AttemptStatus, Outcome, ProviderCallStatus

P = ProviderCallStatus
A = AttemptStatus

LIVE = [P.QUEUED, P.INITIATED, P.RINGING, P.IN_PROGRESS]
FINAL = [P.COMPLETED, P.NO_ANSWER, P.BUSY, P.CANCELED, P.FAILED]


@pytest.mark.parametrize(
    ("provider_status", "voicemail", "status", "outcome"),
    [
        (P.QUEUED, False, A.IN_PROGRESS, None),
        (P.INITIATED, False, A.IN_PROGRESS, None),
        (P.RINGING, False, A.IN_PROGRESS, None),
        (P.IN_PROGRESS, False, A.IN_PROGRESS, None),
        (P.COMPLETED, False, A.COMPLETED, Outcome.ANSWERED),
        (P.COMPLETED, True, A.COMPLETED, Outcome.VOICEMAIL),
        (P.NO_ANSWER, False, A.COMPLETED, Outcome.NO_ANSWER),
        (P.NO_ANSWER, True, A.COMPLETED, Outcome.NO_ANSWER),
        (P.BUSY, False, A.COMPLETED, Outcome.BUSY),
        (P.BUSY, True, A.COMPLETED, Outcome.BUSY),
        (P.CANCELED, False, A.CANCELED, Outcome.CANCELED),
        (P.FAILED, False, A.FAILED, Outcome.FAILED),
        (P.FAILED, True, A.FAILED, Outcome.FAILED),
        (P.RINGING, True, A.IN_PROGRESS, None),
    ],
)
def test_every_provider_status_from_dispatching(
    provider_status: ProviderCallStatus,
    voicemail: bool,
    status: AttemptStatus,
    outcome: Outcome | None,
) -> None:
    change = apply_provider_status(A.DISPATCHING, None, provider_status, voicemail=voicemail)
    assert change == StatusChange(status, outcome, changed=True)


@pytest.mark.parametrize("provider_status", LIVE)
def test_live_event_on_in_progress_is_a_duplicate(provider_status: ProviderCallStatus) -> None:
    change = apply_provider_status(A.IN_PROGRESS, None, provider_status)
    assert change == StatusChange(A.IN_PROGRESS, None, changed=False)


@pytest.mark.parametrize("current", [A.PENDING, A.QUEUED])
def test_live_event_moves_an_early_attempt_forward(current: AttemptStatus) -> None:
    assert apply_provider_status(current, None, P.RINGING) == StatusChange(
        A.IN_PROGRESS, None, changed=True
    )


@pytest.mark.parametrize(
    ("current", "outcome"),
    [
        (A.COMPLETED, Outcome.ANSWERED),
        (A.COMPLETED, Outcome.BUSY),
        (A.FAILED, Outcome.FAILED),
        (A.CANCELED, Outcome.CANCELED),
    ],
)
@pytest.mark.parametrize("provider_status", list(P))
def test_terminal_attempt_never_changes(
    current: AttemptStatus, outcome: Outcome, provider_status: ProviderCallStatus
) -> None:
    change = apply_provider_status(current, outcome, provider_status, voicemail=True)
    assert change == StatusChange(current, outcome, changed=False)


def test_completed_then_late_ringing_stays_completed() -> None:
    first = apply_provider_status(A.IN_PROGRESS, None, P.COMPLETED)
    late = apply_provider_status(first.status, first.outcome, P.RINGING)
    assert (late.status, late.outcome, late.changed) == (A.COMPLETED, Outcome.ANSWERED, False)


@pytest.mark.parametrize("status", list(A))
def test_is_terminal(status: AttemptStatus) -> None:
    assert is_terminal(status) == (status in {A.COMPLETED, A.FAILED, A.CANCELED})


def test_parse_provider_status_accepts_seed_values_and_rejects_others() -> None:
    assert parse_provider_status(" Ringing ") is P.RINGING
    with pytest.raises(ValidationFailed) as info:
        parse_provider_status("answered")
    assert info.value.field == "status"
    assert "no_answer" in info.value.reason


def _replay(events: list[tuple[ProviderCallStatus, bool]]) -> list[StatusChange]:
    status: AttemptStatus = A.DISPATCHING
    outcome: Outcome | None = None
    trail = []
    for provider_status, voicemail in events:
        change = apply_provider_status(status, outcome, provider_status, voicemail=voicemail)
        trail.append(change)
        status, outcome = change.status, change.outcome
    return trail


events_st = st.lists(st.tuples(st.sampled_from(list(P)), st.booleans()), max_size=12)


@given(events_st)
def test_any_event_sequence_never_regresses_and_terminal_absorbs(
    events: list[tuple[ProviderCallStatus, bool]],
) -> None:
    previous_rank = status_rank(A.DISPATCHING)
    terminal_seen: StatusChange | None = None
    for change in _replay(events):
        assert status_rank(change.status) >= previous_rank
        previous_rank = status_rank(change.status)
        if terminal_seen is not None:
            assert (change.status, change.outcome) == (terminal_seen.status, terminal_seen.outcome)
            assert not change.changed
        elif is_terminal(change.status):
            terminal_seen = change


@given(
    st.lists(st.sampled_from(LIVE), max_size=6),
    st.sampled_from(FINAL),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_final_state_is_independent_of_order_with_one_terminal_event(
    live: list[ProviderCallStatus],
    final: ProviderCallStatus,
    voicemail: bool,
    rnd: random.Random,
) -> None:
    events = [(status, False) for status in live] + [(final, voicemail)]
    in_order = _replay(events)[-1]
    shuffled = list(events)
    rnd.shuffle(shuffled)
    out_of_order = _replay(shuffled)[-1]
    assert (out_of_order.status, out_of_order.outcome) == (in_order.status, in_order.outcome)
    assert is_terminal(out_of_order.status)
