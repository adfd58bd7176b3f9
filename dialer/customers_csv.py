"""Read a customers CSV, row by row, into validated customers and per-line errors.

Streaming: rows are validated as they are read, so a large file is never held
whole. Line numbers are the file's own (the header is line 1).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from dialer.errors import describe_validation_error
from dialer.schemas import CUSTOMER_COLUMNS, CustomerIn

INVALID_PHONE = "invalid_phone"
# The problem "field" of a row that repeats an earlier one (reported apart from errors).
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class RowProblem:
    """Why one CSV line was not imported as is."""

    line: int
    field: str
    reason: str
    raw: dict[str, str]


@dataclass(frozen=True)
class ParsedRow:
    line: int
    customer: CustomerIn
    # Set when the row is fine except for its phone: it can still be enrolled as failed.
    phone_problem: RowProblem | None = None


@dataclass
class ParsedCsv:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowProblem] = field(default_factory=list)
    duplicates: list[RowProblem] = field(default_factory=list)


def parse_customers(
    lines: Iterable[str], *, default_region: str | None = None
) -> Iterator[ParsedRow | RowProblem]:
    """Yield a ParsedRow or a RowProblem per data line; duplicates are RowProblems too."""
    reader = csv.DictReader(lines)
    _check_header(reader.fieldnames)
    seen_ids: dict[str, int] = {}
    seen_phones: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        clean = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        result = _parse_row(line, clean, default_region)
        if isinstance(result, ParsedRow):
            dup = _duplicate_of(result, seen_ids, seen_phones, clean)
            if dup is not None:
                yield dup
                continue
        yield result


def collect(results: Iterable[ParsedRow | RowProblem]) -> ParsedCsv:
    parsed = ParsedCsv()
    for item in results:
        if isinstance(item, ParsedRow):
            parsed.rows.append(item)
        elif item.field == DUPLICATE:
            parsed.duplicates.append(item)
        else:
            parsed.errors.append(item)
    return parsed


def _check_header(names: Sequence[str] | None) -> None:
    if not names:
        raise ValueError("the CSV file is empty: line 1 must name the columns")
    known = {n.strip() for n in names} & set(CUSTOMER_COLUMNS)
    if not known & {"customer_id", "phone", "email"}:
        raise ValueError(
            "line 1 must name at least one of the columns customer_id, phone, email "
            f"(found: {', '.join(names)})"
        )


def _to_input(clean: dict[str, str]) -> dict[str, object]:
    data: dict[str, object] = {k: v for k, v in clean.items() if k in CUSTOMER_COLUMNS}
    data["fields"] = {k: v for k, v in clean.items() if k not in CUSTOMER_COLUMNS and k}
    return data


def _parse_row(line: int, clean: dict[str, str], region: str | None) -> ParsedRow | RowProblem:
    data = _to_input(clean)
    ctx = {"default_region": region}
    try:
        return ParsedRow(line, CustomerIn.model_validate(data, context=ctx))
    except ValidationError as exc:
        problems = describe_validation_error(exc)
    if [f for f, _ in problems] == ["phone"]:
        # Only the phone is wrong: keep the customer, flag the number.
        customer = CustomerIn.model_validate(
            {**data, "phone": None} | _id_fallback(data), context=ctx
        )
        phone_problem = RowProblem(line, "phone", problems[0][1], clean)
        return ParsedRow(line, customer.model_copy(update={"phone": None}), phone_problem)
    field_name, reason = problems[0]
    if len(problems) > 1:
        reason = "; ".join(f"{f}: {r}" for f, r in problems)
        field_name = ",".join(f for f, _ in problems)
    return RowProblem(line, field_name, reason, clean)


def _id_fallback(data: dict[str, object]) -> dict[str, object]:
    # A row identified only by its (bad) phone still needs an identity to be stored.
    if data.get("customer_id") or data.get("email"):
        return {}
    return {"customer_id": f"phone:{data.get('phone')}"}


def _duplicate_of(
    row: ParsedRow, ids: dict[str, int], phones: dict[str, int], raw: dict[str, str]
) -> RowProblem | None:
    cust = row.customer
    if cust.customer_id and cust.customer_id in ids:
        first = ids[cust.customer_id]
        return RowProblem(row.line, DUPLICATE, f"customer_id repeats line {first}", raw)
    if cust.phone and cust.phone in phones:
        first = phones[cust.phone]
        return RowProblem(row.line, DUPLICATE, f"phone {cust.phone} repeats line {first}", raw)
    if cust.customer_id:
        ids[cust.customer_id] = row.line
    if cust.phone:
        phones[cust.phone] = row.line
    return None
