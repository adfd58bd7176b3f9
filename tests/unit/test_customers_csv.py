"""CSV rows become customers or problems that name the line, the field and the reason."""

from __future__ import annotations

import io

import pytest

from dialer.customers_csv import collect, parse_customers

HEADER = "customer_id,name,phone,email,timezone,plan\n"


def parse(body: str, region: str | None = None):  # type: ignore[no-untyped-def]
    return collect(parse_customers(io.StringIO(HEADER + body), default_region=region))


def test_good_row_is_normalised_to_e164_and_keeps_extra_columns() -> None:
    parsed = parse("c1,Ann,+1 (212) 555-0123,ann@example.com,,gold\n")
    [row] = parsed.rows
    assert (row.line, row.customer.phone, row.customer.fields) == (
        2,
        "+12125550123",
        {"plan": "gold"},
    )
    assert parsed.errors == []
    assert parsed.duplicates == []


def test_national_number_needs_a_region() -> None:
    assert parse("c1,Ann,(212) 555-0123,,,\n").rows[0].phone_problem is not None
    assert parse("c1,Ann,(212) 555-0123,,,\n", region="US").rows[0].customer.phone == "+12125550123"


def test_invalid_phone_keeps_the_customer_and_flags_the_number() -> None:
    [row] = parse("c1,Ann,+1 212 555,,,\n").rows
    assert row.customer.phone is None
    assert row.phone_problem is not None
    assert (row.phone_problem.line, row.phone_problem.field) == (2, "phone")
    assert "not a valid number" in row.phone_problem.reason


def test_missing_phone_is_a_row_not_an_error() -> None:
    [row] = parse("c1,Ann,,ann@example.com,,\n").rows
    assert row.customer.phone is None
    assert row.phone_problem is None


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ("c1,Ann,+12125550123,not-an-email,,\n", "email", "not an email address"),
        ("c1,Ann,+12125550123,,Mars/Base,\n", "timezone", "unknown IANA time zone"),
        # A directory of the zone files, and a name no zone has: row errors, not OSError.
        ("c1,Ann,+12125550123,,America,\n", "timezone", "unknown IANA time zone"),
        ("c1,Ann,+12125550123,,Europe/../America,\n", "timezone", "unknown IANA time zone"),
        (f"c1,Ann,+12125550123,,{'x' * 300},\n", "timezone", "at most 64 characters"),
        (",Ann,,,,\n", "input", "at least one of customer_id, phone, email"),
    ],
)
def test_bad_rows_name_field_and_reason(body: str, field: str, reason: str) -> None:
    [problem] = parse(body).errors
    assert problem.line == 2
    assert problem.field == field
    assert reason in problem.reason
    assert problem.raw["name"] == "Ann"  # the rejected payload is kept


def test_a_bad_timezone_row_does_not_stop_the_other_rows() -> None:
    parsed = parse("c1,Ann,+12125550123,,America,\nc2,Bob,+12125550124,,Europe/Rome,\n")
    assert [(p.line, p.field) for p in parsed.errors] == [(2, "timezone")]
    assert [(r.line, r.customer.timezone) for r in parsed.rows] == [(3, "Europe/Rome")]


def test_duplicates_are_reported_with_the_first_line() -> None:
    parsed = parse(
        "c1,Ann,+12125550123,,,\n"
        "c2,Bob,+12125550124,,,\n"
        "c1,Ann again,+12125550199,,,\n"
        "c4,Dee,+1 212 555 0124,,,\n"
    )
    assert [r.line for r in parsed.rows] == [2, 3]
    assert [(d.line, d.reason) for d in parsed.duplicates] == [
        (4, "customer_id repeats line 2"),
        (5, "phone +12125550124 repeats line 3"),
    ]


def test_header_without_identifying_column_is_refused() -> None:
    with pytest.raises(ValueError, match="customer_id, phone, email"):
        list(parse_customers(io.StringIO("name,plan\nAnn,gold\n")))


def test_empty_file_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        list(parse_customers(io.StringIO("")))
