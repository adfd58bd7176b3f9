"""Caller-ID rotation over a campaign's phone numbers (seed 003 ``phone_number_ids``).

Strategies (``phone_rotation_strategy``):

- random: a uniform choice with the ``rng`` the caller passes (seed it in tests).
  The campaign cursor is left unchanged.
- round_robin: one cursor for the whole campaign; call k uses ``numbers[k % n]``,
  so load spreads evenly over the numbers whatever contacts the calls go to. The
  returned cursor is already reduced modulo n, so it stays small enough for any
  integer column and keeps working when the list changes length.
- sequential: per contact; attempt n uses ``numbers[(n - 1) % n_numbers]``, so a
  contact who did not answer sees the next number on the retry. The campaign
  cursor is left unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from dialer.errors import ValidationFailed
from dialer.policies.vocabulary import RotationStrategy


@dataclass(frozen=True, slots=True)
class CallerIdChoice:
    """The number to call from, and the campaign cursor to store for the next call."""

    number: str
    next_campaign_cursor: int


def pick_caller_id(
    strategy: RotationStrategy,
    numbers: Sequence[str],
    *,
    campaign_cursor: int,
    attempt_no: int,
    rng: random.Random,
) -> CallerIdChoice:
    """Choose the caller ID for one call attempt (``attempt_no`` counts from 1)."""
    if not numbers:
        raise ValidationFailed("phone_number_ids", "at least one phone number is required")
    if campaign_cursor < 0:
        raise ValidationFailed("campaign_cursor", f"must be >= 0, got {campaign_cursor}")
    if attempt_no < 1:
        raise ValidationFailed("attempt_no", f"must be >= 1, got {attempt_no}")
    count = len(numbers)
    if strategy is RotationStrategy.ROUND_ROBIN:
        slot = campaign_cursor % count
        return CallerIdChoice(numbers[slot], (slot + 1) % count)
    if strategy is RotationStrategy.SEQUENTIAL:
        return CallerIdChoice(numbers[(attempt_no - 1) % count], campaign_cursor)
    if strategy is RotationStrategy.RANDOM:
        return CallerIdChoice(rng.choice(numbers), campaign_cursor)
    raise ValidationFailed("phone_rotation_strategy", f"unknown strategy {strategy!r}")
