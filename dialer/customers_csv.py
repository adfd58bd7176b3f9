"""Read a customers CSV, row by row, into validated customers and per-line errors.

Streaming: rows are validated as they are read, so a large file is never held
whole. Line numbers are the file's own (the header is line 1). Repeats are found here
(``dedupe=True``, memory growing with the file) or, for a streamed import of any size,
by the import itself against a table in the database (``dedupe=False``).
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Final

from pydantic import ValidationError

from dialer.csv_cells import spreadsheet_safe_row
from dialer.errors import describe_validation_error
from dialer.schemas import CUSTOMER_COLUMNS, CustomerIn

INVALID_PHONE = "invalid_phone"
# The problem "field" of a row that repeats an earlier one (reported apart from errors).
DUPLICATE = "duplicate"
# Problems kept in memory for the report and the API answer; all of them go to the spool.
KEPT_PROBLEMS: Final = 1000
_SPOOL_IN_MEMORY_BYTES: Final = 1 << 20


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
    # The line as read (stripped cells), for the rejected-rows file should it repeat another.
    raw: dict[str, str] | None = None


@dataclass
class ParsedCsv:
    rows: list[ParsedRow] = field(default_factory=list)
    errors: list[RowProblem] = field(default_factory=list)
    duplicates: list[RowProblem] = field(default_factory=list)


class ProblemLog:
    """Every rejected row of one import, in file order, in constant memory.

    The first KEPT_PROBLEMS stay in memory (the printed table, the API's answer); all
    of them are written to a temporary spool (in memory up to 1 MiB, then on disk), so
    the rejected-rows file of a million-row import holds every one without the
    process holding them.
    """

    def __init__(self) -> None:
        self.count = 0
        self.kept: list[RowProblem] = []
        self._spool: IO[str] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by close)
            max_size=_SPOOL_IN_MEMORY_BYTES, mode="w+", encoding="utf-8", newline=""
        )

    def add(self, problem: RowProblem) -> None:
        self.count += 1
        if len(self.kept) < KEPT_PROBLEMS:
            self.kept.append(problem)
        record = [problem.line, problem.field, problem.reason, problem.raw]
        self._spool.write(json.dumps(record, ensure_ascii=False) + "\n")

    def __iter__(self) -> Iterator[RowProblem]:
        self._spool.flush()
        self._spool.seek(0)
        for text in self._spool:
            line, field_name, reason, raw = json.loads(text)
            yield RowProblem(line, field_name, reason, raw)
        self._spool.seek(0, 2)  # go on appending after a read

    def close(self) -> None:
        self._spool.close()


def parse_customers(
    lines: Iterable[str], *, default_region: str | None = None, dedupe: bool = True
) -> Iterator[ParsedRow | RowProblem]:
    """Yield a ParsedRow or a RowProblem per data line; duplicates are RowProblems too.

    ``dedupe=False`` leaves repeats to the import (services.imports finds them in the
    database), so reading a file of any size holds one row at a time.
    """
    reader = csv.DictReader(lines)
    _check_header(reader.fieldnames)
    seen_ids: dict[str, int] = {}
    seen_phones: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        clean = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        result = _parse_row(line, clean, default_region)
        if dedupe and isinstance(result, ParsedRow):
            dup = _duplicate_of(result, seen_ids, seen_phones, clean)
            if dup is not None:
                yield dup
                continue
        yield result


def write_rejected_rows(out: IO[str], problems: ProblemLog) -> None:
    """Every rejected row as CSV: line, field, reason, then the row's own columns.

    Read twice from the import's spool (the columns, then the rows): every rejected row
    of a file of any size, none of them held in memory. Cells a spreadsheet would run
    as a formula are escaped (dialer.csv_cells).
    """
    columns: dict[str, None] = {}
    for p in problems:
        columns.update(dict.fromkeys(c for c in p.raw if c not in columns))
    writer = csv.writer(out)
    writer.writerow(["line", "field", "reason", *columns])
    for p in problems:
        cells = [p.line, p.field, p.reason, *(p.raw.get(c, "") for c in columns)]
        writer.writerow(spreadsheet_safe_row(cells))


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
        return ParsedRow(line, CustomerIn.model_validate(data, context=ctx), raw=clean)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
    if [f for f, _ in problems] == ["phone"]:
        # Only the phone is wrong: keep the customer, flag the number.
        customer = CustomerIn.model_validate(
            {**data, "phone": None} | _id_fallback(data), context=ctx
        )
        phone_problem = RowProblem(line, "phone", problems[0][1], clean)
        return ParsedRow(
            line, customer.model_copy(update={"phone": None}), phone_problem, raw=clean
        )
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
