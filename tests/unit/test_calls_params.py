"""The parameters of GET /calls and of an agent's call log: parsed, or refused by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dialer.errors import ValidationFailed
from dialer.services.call_logs import (
    CallLogPage,
    LogSort,
    build_log_query,
    parse_log_sort,
    parse_log_status,
)
from dialer.services.calls_query import (
    Sort,
    build_query,
    escape_like,
    parse_instant,
    parse_outcomes,
    parse_sort,
    parse_words,
)

KNOWN = ("pending", "completed", "failed")


def refused_field(call: object) -> str:
    assert callable(call)
    with pytest.raises(ValidationFailed) as refused:
        call()
    return refused.value.field


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (None, ()),
        ("", ()),
        (" , ,", ()),
        ("completed", ("completed",)),
        ("completed,failed", ("completed", "failed")),
        (" Failed , COMPLETED ,", ("failed", "completed")),
        ("failed,failed,pending", ("failed", "pending")),
    ],
)
def test_comma_separated_words(raw: str | None, words: tuple[str, ...]) -> None:
    assert parse_words(raw, "status", KNOWN) == words


def test_an_unknown_word_names_the_field_and_the_word() -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_words("completed,done", "status", KNOWN)
    assert refused.value.field == "status"
    assert "'done'" in refused.value.reason


@pytest.mark.parametrize(
    ("raw", "outcomes"),
    [
        ("null", (None,)),
        ("NULL", (None,)),
        ("null,answered", (None, "answered")),
        ("busy, null ,null", ("busy", None)),
        ("voicemail", ("voicemail",)),
        (None, ()),
    ],
)
def test_outcomes_take_null_for_no_outcome(
    raw: str | None, outcomes: tuple[str | None, ...]
) -> None:
    assert parse_outcomes(raw) == outcomes


@pytest.mark.parametrize("raw", ["none", "answered,nil", "pending"])
def test_unknown_outcomes_are_refused(raw: str) -> None:
    assert refused_field(lambda: parse_outcomes(raw)) == "outcome"


@pytest.mark.parametrize(
    ("field", "direction", "sort"),
    [
        (None, "desc", Sort("created_at", "desc")),
        ("", "asc", Sort("created_at", "asc")),
        ("finished_at", "asc", Sort("finished_at", "asc")),
        (" last_activity_at ", "desc", Sort("last_activity_at", "desc")),
    ],
)
def test_sort_is_allow_listed(field: str | None, direction: str, sort: Sort) -> None:
    assert parse_sort(field, direction) == sort


@pytest.mark.parametrize(
    ("field", "direction", "named"),
    [
        ("id; drop table call_attempts", "desc", "sort_field"),
        ("customer.name", "desc", "sort_field"),
        ("created_at", "DESC", "sort_dir"),
        ("created_at", "sideways", "sort_dir"),
    ],
)
def test_sort_refusals_name_the_parameter(field: str, direction: str, named: str) -> None:
    assert refused_field(lambda: parse_sort(field, direction)) == named


@pytest.mark.parametrize(
    ("raw", "end_of_day", "instant"),
    [
        ("2026-11-23", False, datetime(2026, 11, 23, tzinfo=UTC)),
        (
            "2026-11-23",
            True,
            datetime(2026, 11, 24, tzinfo=UTC) - timedelta(microseconds=1),
        ),
        ("2026-11-23T09:30:00Z", True, datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),
        ("2026-11-23T09:30:00", False, datetime(2026, 11, 23, 9, 30, tzinfo=UTC)),
        (
            "2026-11-23T10:30:00+01:00",
            False,
            datetime(2026, 11, 23, 10, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
        ("  ", False, None),
        (None, True, None),
    ],
)
def test_instants(raw: str | None, end_of_day: bool, instant: datetime | None) -> None:
    assert parse_instant(raw, "date_from", end_of_day=end_of_day) == instant


@pytest.mark.parametrize("raw", ["tomorrow", "2026-02-30", "23/11/2026", "2026-11-23T25:00"])
def test_bad_instants_name_their_parameter(raw: str) -> None:
    assert refused_field(lambda: parse_instant(raw, "date_to")) == "date_to"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**63}, "offset"),
        ({"date_from": "2026-11-23", "date_to": "2026-11-22T23:00:00Z"}, "date_to"),
        ({"status": "running"}, "status"),
        ({"q": "ann\x00"}, "q"),  # PostgreSQL text cannot hold NUL: refused, not a 500
    ],
)
def test_build_query_refusals(params: dict[str, object], named: str) -> None:
    assert refused_field(lambda: build_query(**params)) == named  # type: ignore[arg-type]


def test_build_query_keeps_what_it_understood() -> None:
    query = build_query(
        status="Completed",
        outcome="null",
        q="  ann  ",
        limit=200,
        offset=5,
        date_from="2026-11-23",
        date_to="2026-11-23",
    )
    assert query.statuses == ("completed",)
    assert query.outcomes == (None,)
    assert query.q == "ann"
    assert (query.limit, query.offset) == (200, 5)
    assert query.date_from is not None
    assert query.date_to is not None
    assert query.date_to - query.date_from == timedelta(days=1, microseconds=-1)
    assert build_query(q="   ").q is None


def test_like_wildcards_are_escaped() -> None:
    assert escape_like(r"50%_off\now") == r"50\%\_off\\now"


# --- seed 001 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "sort"),
    [
        (None, LogSort("created_on", descending=True)),
        ("created_on", LogSort("created_on", descending=False)),
        ("-created_at", LogSort("created_at", descending=True)),
        ("duration_seconds", LogSort("duration_seconds", descending=False)),
        ("-status", LogSort("status", descending=True)),
    ],
)
def test_log_sort_takes_a_leading_minus(raw: str | None, sort: LogSort) -> None:
    assert parse_log_sort(raw) == sort


@pytest.mark.parametrize("raw", ["-", "--created_on", "cost", "+created_on"])
def test_unknown_log_sorts_are_refused(raw: str) -> None:
    assert refused_field(lambda: parse_log_sort(raw)) == "sort"


def test_log_status_accepts_both_vocabularies() -> None:
    assert parse_log_status("Ringing") == "ringing"  # seed 004's telephony word
    assert parse_log_status("pending") == "pending"  # ours, before the provider knows
    assert parse_log_status(" ") is None
    assert refused_field(lambda: parse_log_status("lost")) == "status"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"page": 0}, "page"),
        ({"page": 2**62, "limit": 100}, "page"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"search": "\x00"}, "search"),
    ],
)
def test_log_query_refusals(params: dict[str, Any], named: str) -> None:
    assert refused_field(lambda: build_log_query(**params)) == named


@pytest.mark.parametrize(
    ("total", "page", "limit", "pages", "has_next", "has_previous"),
    [
        (0, 1, 10, 0, False, False),
        (5, 1, 2, 3, True, False),
        (5, 3, 2, 3, False, True),
        (6, 3, 2, 3, False, True),
        (5, 9, 2, 3, False, True),
        (100, 1, 100, 1, False, False),
    ],
)
def test_log_page_arithmetic(
    total: int, page: int, limit: int, pages: int, has_next: bool, has_previous: bool
) -> None:
    log_page = CallLogPage(entries=[], total_count=total, page=page, limit=limit)
    assert (log_page.page_count, log_page.has_next_page, log_page.has_previous_page) == (
        pages,
        has_next,
        has_previous,
    )
