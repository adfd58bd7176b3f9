"""The pre-launch forecast (issue 16): the pure engine on a simulated clock."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialer.errors import ValidationFailed
from dialer.policies.forecast import (
    MAX_HORIZON_DAYS,
    CallDistribution,
    CallTiming,
    CampaignLimits,
    Deferral,
    ForecastContact,
    ForecastResult,
    forecast,
)
from dialer.policies.plan import ContactFacts
from dialer.policies.retry import OutcomeRetries, OutcomeRule, RetryPlan
from dialer.policies.rule_packs import FrequencyCap
from dialer.policies.vocabulary import FallbackChannel, Outcome
from dialer.policies.window import CallWindow, LegalBound, WorkingHours
from dialer.providers.simulation.profile import SimulationProfile
from dialer.services.forecast import distribution_of

ROME = ZoneInfo("Europe/Rome")
WINDOW = CallWindow(WorkingHours(time(9), time(19)), LegalBound())
# Monday 23 November 2026, 10:00 in Rome (UTC+1): the window is open.
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ACTIVE = ContactFacts(state="active", has_phone=True, opted_out=False, invalid_number=False)
SETUP_SECONDS = 30.0


def always(outcome: Outcome, connected: float = 0.0, cost: int = 0) -> CallDistribution:
    """Every call ends with ``outcome`` after a fixed time: the figures are exact."""
    timing = CallTiming((SETUP_SECONDS, SETUP_SECONDS), (connected, connected))
    return CallDistribution({outcome: 1.0}, {outcome: timing}, cost_per_minute_millicents=cost)


def contact(
    ref: str = "c1",
    window: CallWindow = WINDOW,
    facts: ContactFacts = ACTIVE,
    caps: tuple[FrequencyCap, ...] = (),
    recent_calls: tuple[datetime, ...] = (),
) -> ForecastContact:
    return ForecastContact(ref, (ROME,), window, facts, caps=caps, recent_calls=recent_calls)


def limits(concurrency: int = 10, per_day: int | None = None) -> CampaignLimits:
    return CampaignLimits(WINDOW, ROME, concurrency, per_day, window_margin=timedelta(seconds=5))


def run(
    contacts: list[ForecastContact],
    dist: CallDistribution,
    *,
    delays: tuple[int, ...] = (60, 120),
    by_outcome: OutcomeRetries | None = None,
    camp: CampaignLimits | None = None,
    start: datetime = MONDAY_10,
    seed: int = 16,
) -> ForecastResult:
    plan = RetryPlan(delays, 3, None, by_outcome or OutcomeRetries())
    return forecast(contacts, plan, camp or limits(), dist, start=start, seed=seed)


def test_same_seed_same_figures_other_seed_other_draws() -> None:
    people = [contact(f"c{i}") for i in range(60)]
    profile = distribution_of(SimulationProfile())
    first = run(people, profile, seed=7).to_dict()
    assert run(people, profile, seed=7).to_dict() == first
    assert run(people, profile, seed=8).to_dict() != first


def test_answered_first_call_closes_the_contact() -> None:
    result = run([contact()], always(Outcome.ANSWERED, connected=90, cost=1200))
    assert result.calls == 1
    assert result.completed_at == MONDAY_10 + timedelta(seconds=SETUP_SECONDS + 90)
    assert result.closed_as == {"unresolved": 1}
    assert result.cost_millicents == 2 * 1200  # 90 s connected: two started minutes
    assert result.callable_today_share == 1.0


def test_a_contact_outside_the_window_is_called_at_the_next_opening() -> None:
    early = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 07:00 in Rome, opens at 09:00
    result = run([contact()], always(Outcome.ANSWERED), start=early)
    opening = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert result.completed_at == opening + timedelta(seconds=SETUP_SECONDS)
    assert result.deferrals == {Deferral.OUTSIDE_WINDOW: 1}
    assert result.called_today == 1


def test_retries_follow_the_delays() -> None:
    result = run([contact()], always(Outcome.NO_ANSWER), delays=(60, 120))
    call = timedelta(seconds=SETUP_SECONDS)
    # Call 1 ends, 60 min later call 2, it ends, 120 min later call 3, it ends.
    expected = MONDAY_10 + call + timedelta(minutes=60) + call + timedelta(minutes=120) + call
    assert result.completed_at == expected  # would be ~1.5 s after start without delays
    assert result.calls == 3
    assert result.closed_as == {"not_answered": 1}


def test_a_retry_due_after_closing_waits_for_the_next_morning() -> None:
    late = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 18:00 in Rome, window ends 19:00
    morning = run([contact()], always(Outcome.BUSY), delays=(120,))
    assert morning.completed_at is not None
    assert morning.completed_at.date() == MONDAY_10.date()  # from 10:00: retried at 12:00
    result = run([contact()], always(Outcome.BUSY), delays=(120,), start=late)
    assert result.calls == 2
    tuesday_opening = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert result.completed_at == tuesday_opening + timedelta(seconds=SETUP_SECONDS)
    assert result.deferrals[Deferral.OUTSIDE_WINDOW] == 1
    assert result.callable_today_share == 1.0  # its first call was today


def test_max_tries_bound_the_calls_per_contact() -> None:
    people = [contact(f"c{i}") for i in range(5)]
    plain = run(people, always(Outcome.VOICEMAIL, connected=20), delays=(10, 10, 10, 10))
    assert plain.calls_per_contact_max == 5  # len(delays) + 1
    assert plain.calls_per_contact_mean == 5.0
    limited = OutcomeRetries(rules={Outcome.VOICEMAIL: OutcomeRule(max_tries=2)})
    capped = run(people, always(Outcome.VOICEMAIL), delays=(10, 10, 10, 10), by_outcome=limited)
    assert capped.calls_per_contact_max == 2
    assert capped.calls == 10


def test_retry_by_outcome_delays_replace_the_campaigns() -> None:
    own = OutcomeRetries(rules={Outcome.BUSY: OutcomeRule(delays_minutes=(5,))})
    result = run([contact()], always(Outcome.BUSY), delays=(60,), by_outcome=own)
    call = timedelta(seconds=SETUP_SECONDS)
    assert result.completed_at == MONDAY_10 + call + timedelta(minutes=5) + call


def test_a_holiday_is_counted_and_the_call_moves_to_the_next_day() -> None:
    holiday = CallWindow(WINDOW.hours, WINDOW.legal, frozenset({MONDAY_10.date()}))
    result = run([contact(window=holiday)], always(Outcome.ANSWERED))
    assert result.deferrals == {Deferral.HOLIDAY: 1}
    tuesday_opening = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert result.completed_at == tuesday_opening + timedelta(seconds=SETUP_SECONDS)
    assert result.called_today == 0


def test_skipped_contacts_are_counted_by_reason_and_never_called() -> None:
    listed = ContactFacts("active", True, False, False, suppressed=True)
    no_phone = ContactFacts("active", False, False, False)
    people = [contact("a", facts=listed), contact("b", facts=no_phone), contact("c")]
    result = run(people, always(Outcome.ANSWERED))
    assert result.excluded == {"suppressed": 1, "missing_contact": 1}
    assert result.calls == 1
    assert result.callable_today_share == pytest.approx(1 / 3)


def test_zones_without_a_common_hour_are_skipped() -> None:
    apart = ForecastContact("x", (ROME, ZoneInfo("Pacific/Auckland")), WINDOW, ACTIVE)
    result = run([apart], always(Outcome.ANSWERED))
    assert result.excluded == {"no_common_window": 1}
    assert result.completed_at == MONDAY_10  # nothing to do


def test_a_full_frequency_cap_waits_for_the_oldest_call_to_age_out() -> None:
    yesterday = MONDAY_10 - timedelta(hours=20)
    capped = contact(caps=(FrequencyCap(calls=1, hours=24),), recent_calls=(yesterday,))
    result = run([capped], always(Outcome.ANSWERED))
    assert result.deferrals == {Deferral.FREQUENCY_CAP: 1}
    frees_at = yesterday + timedelta(hours=24)  # 14:00 Rome, inside the window
    assert result.completed_at == frees_at + timedelta(seconds=SETUP_SECONDS)


def test_concurrency_queues_calls_and_the_daily_cap_moves_them_to_tomorrow() -> None:
    people = [contact(f"c{i}") for i in range(3)]
    serial = run(people, always(Outcome.ANSWERED), camp=limits(concurrency=1))
    assert serial.deferrals == {Deferral.CONCURRENCY: 2}
    assert serial.completed_at == MONDAY_10 + 3 * timedelta(seconds=SETUP_SECONDS)
    capped = run(people, always(Outcome.ANSWERED), camp=limits(per_day=2))
    assert capped.deferrals[Deferral.DAILY_CAP] == 1
    assert capped.called_today == 2
    tuesday_opening = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert capped.completed_at == tuesday_opening + timedelta(seconds=SETUP_SECONDS)


def test_a_call_the_window_would_close_on_waits_for_the_next_opening() -> None:
    closing = datetime(2026, 11, 23, 17, 59, 58, tzinfo=UTC)  # 18:59:58 in Rome
    result = run([contact()], always(Outcome.ANSWERED), start=closing)
    assert result.deferrals == {Deferral.OUTSIDE_WINDOW: 1}
    tuesday_opening = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert result.completed_at == tuesday_opening + timedelta(seconds=SETUP_SECONDS)


def test_contacts_still_open_at_the_horizon_leave_no_completion_time() -> None:
    plan = RetryPlan((60 * 24 * 20,) * 3, 3, None)
    result = forecast(
        [contact()], plan, limits(), always(Outcome.NO_ANSWER), start=MONDAY_10, horizon_days=30
    )
    assert result.completed_at is None
    assert result.open_at_horizon == 1
    assert result.calls == 2


@pytest.mark.parametrize("days", [0, MAX_HORIZON_DAYS + 1, 365])
def test_a_horizon_beyond_the_bound_is_refused(days: int) -> None:
    with pytest.raises(ValidationFailed, match="horizon_days"):
        forecast(
            [contact()],
            RetryPlan((), 3, None),
            limits(),
            always(Outcome.ANSWERED),
            start=MONDAY_10,
            horizon_days=days,
        )


def test_the_profile_becomes_plain_numbers() -> None:
    dist = distribution_of(SimulationProfile(answer_rate=1, busy_rate=0, voicemail_rate=0,
                                             no_answer_rate=0, failure_rate=0))  # fmt: skip
    assert dist.weights[Outcome.ANSWERED] == 1
    assert dist.timing[Outcome.ANSWERED].connected_seconds == (30.0, 300.0)
    assert dist.cost_per_minute_millicents == 1200


def test_message_first_delays_the_first_call_and_the_fallback_is_sent_once() -> None:
    wa = FallbackChannel.WHATSAPP
    first = CampaignLimits(WINDOW, ROME, 10, message_first=True)
    plan = RetryPlan((30, 30), 1, wa)
    result = forecast([contact()], plan, first, always(Outcome.ANSWERED), start=MONDAY_10)
    assert result.messages == 1
    assert result.completed_at == MONDAY_10 + timedelta(minutes=30, seconds=SETUP_SECONDS)
    fallback = forecast([contact()], plan, limits(), always(Outcome.NO_ANSWER), start=MONDAY_10)
    assert fallback.messages == 1  # after the first unanswered call, once
    assert fallback.calls == 3
