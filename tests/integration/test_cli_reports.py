"""`dialer campaign status` and `dialer campaign export` on a campaign with known results."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from dialer.cli.main import app
from dialer.services.accounts import DEFAULT_ACCOUNT
from models import CallAttempt
from models.session import transaction
from tests.integration.results_support import (
    EXPECTED_COUNTERS,
    RESULT_CUSTOMERS,
    campaign_with_results,
)

EXPORT_COLUMNS = [
    "customer",
    "customer_id",
    "name",
    "surname",
    "phone",
    "email",
    "state",
    "close_reason",
    "goal_met",
    "calls_made",
    "last_outcome",
    "last_call_at",
    "last_call_duration_seconds",
    "total_cost_millicents",
    "whatsapp_sent",
    "last_contact_at",
    "enrolled_at",
    "closed_at",
]


def table_row(output: str, label: str) -> list[str]:
    """The cells of the table row whose first cell is ``label``."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in:\n{output}")


def test_status_shows_the_counters_and_the_states(cli: CliRunner, clean_db: str) -> None:
    campaign_with_results(clean_db, DEFAULT_ACCOUNT, "Results")
    campaign_with_results(clean_db, "other", "Results")  # same name, another account
    result = cli.invoke(app, ["campaign", "status", "Results"])
    assert result.exit_code == 0, result.output
    assert "status=draft" in result.output
    for name, value in EXPECTED_COUNTERS.items():
        assert table_row(result.output, name)[1] == str(value), name
    assert table_row(result.output, "goal_met")[1] == "1"
    assert table_row(result.output, "active")[1] == "2"
    assert table_row(result.output, "opted_out")[1] == "0"
    assert table_row(result.output, "no_answer")[1] == "2"
    assert table_row(result.output, "voicemail")[1] == "2"
    assert "outside the contact's window: 0 OK" in result.output


def test_status_of_an_unknown_campaign_is_an_error(cli: CliRunner) -> None:
    result = cli.invoke(app, ["campaign", "status", "Nope"])
    assert result.exit_code == 1
    assert "Nope" in result.output


def test_export_writes_one_row_per_customer(cli: CliRunner, clean_db: str, tmp_path: Path) -> None:
    campaign_with_results(clean_db, DEFAULT_ACCOUNT, "Results")
    out = tmp_path / "results.csv"
    result = cli.invoke(app, ["campaign", "export", "Results", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "6 customers" in result.output
    with out.open(newline="") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames == EXPORT_COLUMNS
        rows = {row["customer_id"]: row for row in reader}
    assert set(rows) == {c["customer_id"] for c in RESULT_CUSTOMERS}
    assert rows["c1"]["phone"] == RESULT_CUSTOMERS[0]["phone"]
    assert (rows["c1"]["state"], rows["c1"]["goal_met"]) == ("goal_met", "True")
    assert rows["c1"]["last_call_duration_seconds"] == "60.00"
    assert rows["c2"]["goal_met"] == "False"
    assert (rows["c2"]["calls_made"], rows["c2"]["last_outcome"]) == ("3", "busy")
    assert (rows["c4"]["last_outcome"], rows["c4"]["total_cost_millicents"]) == (
        "answered",
        "350000",
    )
    assert (rows["c6"]["calls_made"], rows["c6"]["last_outcome"]) == ("0", "")
    assert rows["c6"]["total_cost_millicents"] == "0"


def test_export_of_an_unknown_campaign_writes_nothing(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    result = cli.invoke(app, ["campaign", "export", "Nope", "--out", str(out)])
    assert result.exit_code == 1
    assert not out.exists()


def test_export_evidence_writes_one_row_per_dialed_call(
    cli: CliRunner, clean_db: str, tmp_path: Path
) -> None:
    campaign_id = campaign_with_results(clean_db, DEFAULT_ACCOUNT, "Results")
    with transaction(clean_db) as session:
        attempts = session.scalars(
            select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
        ).all()
        dialed = [a for a in attempts if a.dispatched_at is not None]
        first = min(dialed, key=lambda a: (a.dispatched_at, a.id))
        first.evidence = {
            "version": 1,
            "checked_at": "2026-07-15T14:00:00Z",
            "zones": ["America/New_York", "America/Chicago"],
            "zone_source": "location",
            "jurisdiction": {"country": "US", "subdivision": None, "source": "phone"},
            "rule_packs": ["us@2026-12-03"],
            "strictest_reading": True,
            "suppression_checked_at": "=cmd|' /C calc'!A0",  # hostile: escaped in the sheet
        }
    out = tmp_path / "evidence.csv"
    result = cli.invoke(app, ["campaign", "export", "Results", "--out", str(out), "--evidence"])
    assert result.exit_code == 0, result.output
    assert f"{len(dialed)} dialed calls" in result.output
    with out.open(newline="") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames is not None
        assert reader.fieldnames[:7] == [
            "attempt",
            "customer_id",
            "phone",
            "attempt_no",
            "dispatched_at",
            "status",
            "outcome",
        ]
        assert "evidence_rule_packs" in reader.fieldnames
        rows = list(reader)
    assert len(rows) == len(dialed)
    top = rows[0]
    assert top["attempt"] == str(first.id)
    assert top["evidence_zones"] == "America/New_York America/Chicago"
    assert top["evidence_jurisdiction"] == "country=US source=phone"
    assert top["evidence_strictest_reading"] == "true"
    assert top["evidence_suppression_checked_at"].startswith("'=")
    assert all(row["evidence_zones"] == "" for row in rows[1:])  # dialed before the record
