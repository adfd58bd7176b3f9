"""Caller-ID rotation: random, round_robin (campaign-wide), sequential (per contact)."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.errors import ValidationFailed
from dialer.policies.rotation import CallerIdChoice, pick_caller_id
from dialer.policies.vocabulary import RotationStrategy

NUMBERS = ("+15550000001", "+15550000002", "+15550000003")


def pick(
    strategy: RotationStrategy, cursor: int = 0, attempt_no: int = 1, seed: int = 7
) -> CallerIdChoice:
    return pick_caller_id(
        strategy, NUMBERS, campaign_cursor=cursor, attempt_no=attempt_no, rng=random.Random(seed)
    )


@pytest.mark.parametrize(
    ("cursor", "number", "next_cursor"),
    [(0, NUMBERS[0], 1), (1, NUMBERS[1], 2), (2, NUMBERS[2], 0), (7, NUMBERS[1], 2)],
)
def test_round_robin_follows_the_campaign_cursor(
    cursor: int, number: str, next_cursor: int
) -> None:
    assert pick(RotationStrategy.ROUND_ROBIN, cursor=cursor, attempt_no=5) == CallerIdChoice(
        number, next_cursor
    )


@pytest.mark.parametrize(
    ("attempt_no", "number"),
    [(1, NUMBERS[0]), (2, NUMBERS[1]), (3, NUMBERS[2]), (4, NUMBERS[0])],
)
def test_sequential_moves_to_the_next_number_on_each_retry(attempt_no: int, number: str) -> None:
    assert pick(RotationStrategy.SEQUENTIAL, cursor=11, attempt_no=attempt_no) == CallerIdChoice(
        number, 11
    )


def test_random_uses_the_given_rng_and_keeps_the_cursor() -> None:
    expected = random.Random(42).choice(NUMBERS)
    choice = pick(RotationStrategy.RANDOM, cursor=5, seed=42)
    assert choice == CallerIdChoice(expected, 5)


def test_random_reaches_every_number() -> None:
    rng = random.Random(1)
    seen = {
        pick_caller_id(
            RotationStrategy.RANDOM, NUMBERS, campaign_cursor=0, attempt_no=1, rng=rng
        ).number
        for _ in range(60)
    }
    assert seen == set(NUMBERS)


@pytest.mark.parametrize("strategy", list(RotationStrategy))
def test_empty_numbers_are_rejected(strategy: RotationStrategy) -> None:
    with pytest.raises(ValidationFailed) as info:
        pick_caller_id(strategy, [], campaign_cursor=0, attempt_no=1, rng=random.Random(0))
    assert info.value.field == "phone_number_ids"


@pytest.mark.parametrize(("cursor", "attempt_no"), [(-1, 1), (0, 0)])
def test_negative_cursor_and_attempt_zero_are_rejected(cursor: int, attempt_no: int) -> None:
    with pytest.raises(ValidationFailed):
        pick(RotationStrategy.SEQUENTIAL, cursor=cursor, attempt_no=attempt_no)


@given(
    st.lists(st.text(min_size=1, max_size=4), min_size=1, max_size=6, unique=True),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=0, max_value=1000),
)
def test_round_robin_over_k_rounds_uses_each_number_k_times(
    numbers: list[str], rounds: int, start: int
) -> None:
    cursor = start
    used: Counter[str] = Counter()
    for _ in range(rounds * len(numbers)):
        choice = pick_caller_id(
            RotationStrategy.ROUND_ROBIN,
            numbers,
            campaign_cursor=cursor,
            attempt_no=1,
            rng=random.Random(0),
        )
        used[choice.number] += 1
        cursor = choice.next_campaign_cursor
        assert 0 <= cursor < len(numbers)
    assert used == dict.fromkeys(numbers, rounds)


@given(
    st.lists(st.text(min_size=1, max_size=4), min_size=2, max_size=6, unique=True),
    st.integers(min_value=1, max_value=50),
)
def test_sequential_retry_never_repeats_the_previous_number(
    numbers: list[str], attempt_no: int
) -> None:
    def number_for(n: int) -> str:
        return pick_caller_id(
            RotationStrategy.SEQUENTIAL,
            numbers,
            campaign_cursor=0,
            attempt_no=n,
            rng=random.Random(0),
        ).number

    assert number_for(attempt_no) != number_for(attempt_no + 1)
