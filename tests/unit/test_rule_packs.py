"""Rule packs: every shipped rule, as a table, and the property that no allowed call breaks one."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.policies.contact_rules import contact_rules
from dialer.policies.jurisdiction import JurisdictionSource, jurisdiction_of, rules_for
from dialer.policies.location import NO_LOCATION, CustomerLocation
from dialer.policies.rule_pack_data import PACKS
from dialer.policies.rule_packs import (
    AppliedRules,
    FrequencyCap,
    apply_rules,
    cap_allows,
    public_holidays,
)
from dialer.policies.window import (
    LegalBound,
    WorkingHours,
    is_open,
    next_opening_within_a_year,
    validate_window,
)

EVERY_DAY = validate_window(
    WorkingHours(time(8), time(21), frozenset(range(7))), LegalBound(time(8), time(21))
)
BY_ID = {pack.id: pack for pack in PACKS}
# Each shipped pack: hours, closed weekdays, closed on holidays, caps (calls, hours).
EXPECTED = {
    "us": ((8, 21), set(), False, []),
    "us-fl": ((8, 20), set(), False, [(3, 24)]),
    "us-ok": ((8, 20), set(), False, [(3, 24)]),
    "us-al": ((8, 20), {6}, True, []),
    "us-la": ((8, 20), {6}, True, []),
    "us-ms": ((8, 20), {6}, True, []),
    "us-md": ((8, 20), set(), False, [(3, 24)]),
    "us-ma": ((8, 20), set(), False, []),
    "us-ct": ((9, 20), set(), False, []),
    "us-ky": ((10, 21), set(), False, []),
    "us-nv": ((9, 20), set(), False, []),
    "us-wa": ((8, 20), set(), False, []),
    "fr": ((14, 20), {5, 6}, True, [(4, 720)]),
    "es": ((9, 21), {5, 6}, True, []),
}


def test_every_shipped_pack_is_in_the_table_and_cites_a_source() -> None:
    assert set(BY_ID) == set(EXPECTED)
    for pack in PACKS:
        assert pack.sources, pack.id
        assert pack.version


@pytest.mark.parametrize("pack_id", sorted(EXPECTED))
def test_each_pack_s_rules(pack_id: str) -> None:
    pack = BY_ID[pack_id]
    (start, end), closed, on_holidays, caps = EXPECTED[pack_id]
    assert (pack.start, pack.end) == (time(start), time(end))
    assert set(pack.closed_weekdays) == closed
    assert pack.closed_on_holidays is on_holidays
    assert [(c.calls, c.hours) for c in pack.caps] == caps


# A Tuesday in July, and the same week's Sunday, in Eastern/Central time.
TUESDAY = date(2026, 7, 14)
SUNDAY = date(2026, 7, 19)
STATE_ZONES = {"FL": "America/New_York", "AL": "America/Chicago", "LA": "America/Chicago",
               "MS": "America/Chicago", "OK": "America/Chicago", "MD": "America/New_York",
               "MA": "America/New_York", "CT": "America/New_York", "KY": "America/New_York",
               "NV": "America/Los_Angeles", "WA": "America/Los_Angeles",
               "NY": "America/New_York"}  # fmt: skip


def _open(state: str, local: datetime) -> bool:
    zone = ZoneInfo(STATE_ZONES[state])
    rules = contact_rules(EVERY_DAY, CustomerLocation("US", state), None, local, PACKS)
    return is_open(rules.window, [zone], local.replace(tzinfo=zone))


@pytest.mark.parametrize(
    ("state", "hour", "expected"),
    [
        ("NY", 20, True),  # federal only: 8-21
        ("FL", 20, False),
        ("FL", 19, True),
        ("OK", 20, False),
        ("CT", 8, False),
        ("CT", 9, True),
        ("KY", 9, False),
        ("KY", 20, True),
        ("NV", 8, False),
        ("WA", 20, False),
        ("MD", 19, True),
    ],
)
def test_hours_by_state(state: str, hour: int, expected: bool) -> None:
    assert _open(state, datetime.combine(TUESDAY, time(hour, 30))) is expected


@pytest.mark.parametrize(
    ("state", "expected"), [("AL", False), ("LA", False), ("MS", False), ("FL", True)]
)
def test_sunday_rules(state: str, expected: bool) -> None:
    assert _open(state, datetime.combine(SUNDAY, time(12))) is expected


@pytest.mark.parametrize(
    ("state", "expected"), [("AL", False), ("LA", False), ("MS", False), ("FL", True)]
)
def test_holiday_rules(state: str, expected: bool) -> None:
    independence_day = date(2026, 7, 3)  # observed on Friday: the 4th is a Saturday
    calendar = public_holidays("US", state, (2026,))
    day = independence_day if independence_day in calendar else date(2026, 7, 4)
    assert day in calendar
    assert _open(state, datetime.combine(day, time(12))) is expected


def test_a_holiday_moves_the_opening_to_the_next_open_day() -> None:
    zone = ZoneInfo("America/Chicago")
    new_year = datetime(2026, 1, 1, 10, tzinfo=zone)  # a Thursday, a holiday in Alabama
    rules = contact_rules(EVERY_DAY, CustomerLocation("US", "AL"), None, new_year, PACKS)
    opening = next_opening_within_a_year(rules.window, [zone], new_year)
    assert opening == datetime(2026, 1, 2, 8, tzinfo=zone).astimezone(UTC)


def test_unknown_state_takes_every_pack_of_the_country_and_says_so() -> None:
    jurisdiction = jurisdiction_of(NO_LOCATION, "+18005550100")  # toll-free: no state
    applied = rules_for(jurisdiction, PACKS)
    assert applied.strictest
    assert {p.id for p in applied.packs} == {i for i in EXPECTED if i.startswith("us")}
    window = apply_rules(EVERY_DAY, applied, (2026,))
    assert (window.effective_start, window.effective_end) == (time(10), time(20))
    assert 6 not in window.hours.weekdays


def test_the_record_s_state_wins_over_the_area_code() -> None:
    # A Miami number whose customer says New York: New York's (federal) hours.
    jurisdiction = jurisdiction_of(CustomerLocation("US", "NY"), "+13055550123")
    assert (jurisdiction.subdivision, jurisdiction.source) == ("NY", JurisdictionSource.LOCATION)
    assert [p.id for p in rules_for(jurisdiction, PACKS).packs] == ["us"]


def test_the_area_code_gives_the_state() -> None:
    assert jurisdiction_of(NO_LOCATION, "+13055550123").subdivision == "FL"
    assert jurisdiction_of(NO_LOCATION, "+12125550123").subdivision == "NY"
    assert jurisdiction_of(NO_LOCATION, "+390612345678").country == "IT"


def test_countries_without_packs_keep_the_window() -> None:
    applied = rules_for(jurisdiction_of(NO_LOCATION, "+390612345678"), PACKS)
    assert applied == AppliedRules(())
    assert apply_rules(EVERY_DAY, applied, (2026,)) == EVERY_DAY


NOW = datetime(2026, 7, 14, 15, tzinfo=UTC)
THREE_A_DAY = (FrequencyCap(3, 24),)


def test_a_full_cap_reopens_when_the_oldest_call_ages_out() -> None:
    calls = [NOW - timedelta(hours=h) for h in (1, 5, 23)]
    assert cap_allows(THREE_A_DAY, calls, NOW) == NOW - timedelta(hours=23) + timedelta(hours=24)
    assert cap_allows(THREE_A_DAY, calls[:2], NOW) is None
    assert cap_allows(THREE_A_DAY, [NOW - timedelta(hours=25)] * 5, NOW) is None


@settings(max_examples=300, deadline=None)
@given(
    state=st.sampled_from(sorted(STATE_ZONES)),
    minutes=st.integers(min_value=0, max_value=366 * 24 * 60),
)
def test_no_allowed_instant_breaks_a_pack(state: str, minutes: int) -> None:
    """Property: whenever the narrowed window is open, every governing pack is kept."""
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    zone = ZoneInfo(STATE_ZONES[state])
    rules = contact_rules(EVERY_DAY, CustomerLocation("US", state), None, at, PACKS)
    if not is_open(rules.window, [zone], at):
        return
    local = at.astimezone(zone)
    for pack in rules.applied.packs:
        assert pack.start <= local.time() < pack.end, (pack.id, local)
        assert local.weekday() not in pack.closed_weekdays, (pack.id, local)
        if pack.closed_on_holidays:
            assert local.date() not in public_holidays("US", state, (local.year,)), pack.id


@pytest.mark.parametrize(
    ("state", "local", "bucket"),
    [
        ("AL", datetime(2026, 1, 1, 10), "held_holiday"),  # New Year's Day
        ("AL", datetime(2026, 7, 19, 10), "held_closed_day"),  # a Sunday
        ("FL", datetime(2026, 7, 14, 20, 30), "held_pack_hours"),
        ("NY", datetime(2026, 7, 14, 20, 30), "callable_now"),
    ],
)
def test_the_plan_says_which_rule_holds_a_contact(state: str, local: datetime, bucket: str) -> None:
    from dialer.policies.plan import ContactFacts, classify_contact

    zone = ZoneInfo(STATE_ZONES[state])
    at = local.replace(tzinfo=zone)
    rules = contact_rules(EVERY_DAY, CustomerLocation("US", state), None, at, PACKS)
    facts = ContactFacts(state="active", has_phone=True, opted_out=False, invalid_number=False)
    standing = classify_contact(rules.window, [zone], facts, at, campaign_window=EVERY_DAY)
    assert standing.bucket == bucket


# --- France and Spain ----------------------------------------------------------------

PARIS, MADRID = ZoneInfo("Europe/Paris"), ZoneInfo("Europe/Madrid")


def _open_in(country: str, zone: ZoneInfo, local: datetime) -> bool:
    rules = contact_rules(EVERY_DAY, CustomerLocation(country), None, local, PACKS)
    return is_open(rules.window, [zone], local.replace(tzinfo=zone))


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 12, 7, 14, 0), True),  # Monday afternoon
        (datetime(2026, 12, 7, 19, 59), True),
        (datetime(2026, 12, 7, 20, 0), False),
        (datetime(2026, 12, 7, 13, 30), False),  # the lunch break
        (datetime(2026, 12, 7, 11, 0), False),  # the morning range is not kept
        (datetime(2026, 12, 5, 15, 0), False),  # Saturday
        (datetime(2026, 12, 25, 15, 0), False),  # Christmas, a Friday
        (datetime(2026, 7, 14, 15, 0), False),  # Bastille Day, a Tuesday
    ],
)
def test_france_hours_days_and_holidays(local: datetime, expected: bool) -> None:
    assert _open_in("FR", PARIS, local) is expected


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2026, 12, 7, 9, 0), True),
        (datetime(2026, 12, 7, 8, 59), False),
        (datetime(2026, 12, 7, 20, 59), True),
        (datetime(2026, 12, 7, 21, 0), False),
        (datetime(2026, 12, 6, 12, 0), False),  # Sunday (and Constitution Day)
        (datetime(2026, 12, 8, 12, 0), False),  # Immaculate Conception, a Tuesday
        (datetime(2026, 12, 9, 12, 0), True),
    ],
)
def test_spain_hours_days_and_holidays(local: datetime, expected: bool) -> None:
    assert _open_in("ES", MADRID, local) is expected


def test_a_french_number_gets_the_french_pack_and_its_monthly_cap() -> None:
    applied = rules_for(jurisdiction_of(NO_LOCATION, "+33612345678"), PACKS)
    assert [p.id for p in applied.packs] == ["fr"]
    at = datetime(2026, 12, 7, 14, tzinfo=UTC)
    four = [at - timedelta(days=d) for d in (1, 8, 15, 29)]
    assert cap_allows(applied.caps, four, at) == at - timedelta(days=29) + timedelta(days=30)
    assert cap_allows(applied.caps, four[:3], at) is None


@settings(max_examples=300, deadline=None)
@given(
    country=st.sampled_from([("FR", "Europe/Paris"), ("ES", "Europe/Madrid")]),
    minutes=st.integers(min_value=0, max_value=366 * 24 * 60),
)
def test_no_allowed_instant_breaks_a_european_pack(country: tuple[str, str], minutes: int) -> None:
    """Property: whenever the narrowed window is open, the country's pack is kept."""
    code, name = country
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    zone = ZoneInfo(name)
    rules = contact_rules(EVERY_DAY, CustomerLocation(code), None, at, PACKS)
    if not is_open(rules.window, [zone], at):
        return
    local = at.astimezone(zone)
    (pack,) = rules.applied.packs
    assert pack.start <= local.time() < pack.end, local
    assert local.weekday() not in pack.closed_weekdays, local
    assert local.date() not in public_holidays(code, None, (local.year,)), local


@settings(max_examples=300, deadline=None)
@given(
    pack_id=st.sampled_from(sorted(i for i, p in BY_ID.items() if p.caps)),
    gaps=st.lists(st.integers(min_value=0, max_value=48 * 60), min_size=1, max_size=40),
)
def test_no_call_the_caps_allow_breaks_a_cap(pack_id: str, gaps: list[int]) -> None:
    """Property: calls placed whenever ``cap_allows`` says so (else at its reopening)
    never put more than N calls in any of the pack's rolling periods."""
    caps = BY_ID[pack_id].caps
    placed: list[datetime] = []
    at = datetime(2026, 1, 5, tzinfo=UTC)
    for gap in gaps:
        at += timedelta(minutes=gap)
        reopens = cap_allows(caps, placed, at)
        if reopens is not None:
            assert reopens > at
            at = reopens
            assert cap_allows(caps, placed, at) is None  # the reopening really is open
        placed.append(at)
    for cap in caps:
        for end in placed:
            inside = [t for t in placed if end - cap.period < t <= end]
            assert len(inside) <= cap.calls, (pack_id, cap)
