"""Held placements: the look-up back-off and the deadline (pure), and the adapter's hooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dialer.policies.status import apply_provider_status
from dialer.policies.uncertain import next_uncertain_check, uncertain_expired
from dialer.policies.vocabulary import (
    IN_FLIGHT_ATTEMPT_STATUSES,
    OPEN_ATTEMPT_STATUSES,
    AttemptStatus,
    ProviderCallStatus,
)
from dialer.providers.base import CallRecord, PlaceCallRequest
from dialer.providers.provider_http import ProviderHttp
from dialer.providers.voice_adapter import HostedVoiceAdapter

HELD = datetime(2026, 11, 23, 15, tzinfo=UTC)
DEADLINE = timedelta(hours=3)


@pytest.mark.parametrize(
    ("age", "next_in"),
    [
        (timedelta(0), timedelta(seconds=15)),  # the floor: 1/720 of the deadline
        (timedelta(minutes=2), timedelta(minutes=1)),  # half its age
        (timedelta(hours=1), timedelta(minutes=15)),  # the ceiling: 1/12 of the deadline
        (DEADLINE - timedelta(minutes=1), timedelta(minutes=1)),  # never past the deadline
    ],
)
def test_lookups_back_off_with_age_and_stop_at_the_deadline(
    age: timedelta, next_in: timedelta
) -> None:
    now = HELD + age
    assert next_uncertain_check(HELD, now, DEADLINE) - now == next_in


def test_the_deadline_ends_the_hold() -> None:
    assert not uncertain_expired(HELD, HELD + DEADLINE - timedelta(seconds=1), DEADLINE)
    assert uncertain_expired(HELD, HELD + DEADLINE, DEADLINE)


def test_a_held_attempt_is_open_in_flight_and_moved_on_by_any_call_event() -> None:
    assert AttemptStatus.UNCERTAIN in OPEN_ATTEMPT_STATUSES
    assert AttemptStatus.UNCERTAIN in IN_FLIGHT_ATTEMPT_STATUSES
    ringing = apply_provider_status(AttemptStatus.UNCERTAIN, None, ProviderCallStatus.RINGING)
    assert (ringing.status, ringing.changed) == (AttemptStatus.IN_PROGRESS, True)
    busy = apply_provider_status(AttemptStatus.UNCERTAIN, None, ProviderCallStatus.BUSY)
    assert (busy.status, busy.outcome) == (AttemptStatus.COMPLETED, "busy")


def test_an_adapter_missing_a_hook_cannot_be_made() -> None:
    class NoLookup(HostedVoiceAdapter):  # no find_call, get_call, parse_event
        name = "incomplete"

        def _send_placement(self, request: PlaceCallRequest) -> CallRecord:
            raise AssertionError("never sent")

    with pytest.raises(TypeError, match="abstract"):
        NoLookup(ProviderHttp.__new__(ProviderHttp))  # type: ignore[abstract]
