"""``dialer campaign status`` and ``dialer campaign export``: what a campaign did.

status prints seed 003's counters, the enrollment states, the call outcomes and the
window audit; export writes one CSV row per enrolled customer (or, with --evidence, per
dialed call with the record of why it was allowed), streamed from the database, for
spreadsheets, CRMs and audits.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol, TextIO

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from dialer.cli.support import AccountOpt, console, fail, runtime
from dialer.csv_cells import spreadsheet_safe_row
from dialer.errors import DialerError
from dialer.policies.vocabulary import EnrollmentState, Outcome
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.campaigns import find_campaign, legal_bound
from dialer.services.exports import (
    EVIDENCE_COLUMNS,
    RESULT_COLUMNS,
    ResultRow,
    campaign_evidence,
    campaign_results,
)
from dialer.services.reports import campaign_report
from models import Campaign

CampaignArg = Annotated[str, typer.Argument(help="Campaign name or id.")]


class _Row(Protocol):
    def values(self) -> tuple[Any, ...]: ...


def campaign_status(campaign: CampaignArg, account: AccountOpt = DEFAULT_ACCOUNT) -> None:
    """Seed 003 counters, enrollment states and call outcomes of CAMPAIGN."""
    rt = runtime()
    with rt.session() as session:
        target = _find(session, account, campaign)
        report = campaign_report(session, target.id, legal_bound(rt.settings))
        title = f"campaign [bold]{target.name}[/] id={target.id} status=[bold]{target.status}[/]"
    console.print(title)
    console.print(_counters_table(report.counters))
    console.print(_counts_table("Enrollment states", report.states, EnrollmentState))
    # Attempts without an outcome yet count under their status (pending, queued, ...).
    console.print(_counts_table("Call outcomes", report.outcomes, Outcome))
    verdict = "OK" if report.calls_outside_window == 0 else "[red]VIOLATION[/]"
    console.print(
        f"calls placed outside the contact's window: {report.calls_outside_window} {verdict}"
    )
    over = report.calls_over_frequency_cap
    console.print(
        f"calls placed over a frequency cap: {over} {'OK' if over == 0 else '[red]VIOLATION[/]'}"
    )
    if report.holds:
        console.print(_counts_table("Held back by a rule", report.holds, ()))


def campaign_export(
    campaign: CampaignArg,
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="CSV file to write.")],
    account: AccountOpt = DEFAULT_ACCOUNT,
    evidence: Annotated[
        bool,
        typer.Option(
            "--evidence",
            help="One row per dialed call with the evidence of why it was allowed "
            "(zones, local times, rule packs, window, suppression check), for audits.",
        ),
    ] = False,
) -> None:
    """One CSV row per enrolled customer: state, calls made, latest outcome, cost, goal met."""
    rt = runtime()
    with rt.session() as session:
        target = _find(session, account, campaign)
        with out.open("w", newline="", encoding="utf-8") as stream:
            if evidence:
                written = write_rows(
                    stream, EVIDENCE_COLUMNS, campaign_evidence(session, target.id)
                )
            else:
                written = write_results(stream, campaign_results(session, target.id))
        name = target.name
    what = "dialed calls" if evidence else "customers"
    console.print(f"{written} {what} of [bold]{name}[/] written to {out}")


def write_results(stream: TextIO, rows: Iterable[ResultRow]) -> int:
    """Write the header and ``rows`` as they come; returns how many rows were written."""
    return write_rows(stream, RESULT_COLUMNS, rows)


def write_rows(stream: TextIO, columns: Sequence[str], rows: Iterable[_Row]) -> int:
    """The header, then each row as it comes; returns how many rows were written.

    Customer cells that a spreadsheet would run as a formula are escaped (dialer.csv_cells).
    """
    writer = csv.writer(stream)
    writer.writerow(columns)
    written = 0
    for row in rows:
        writer.writerow(spreadsheet_safe_row(row.values()))
        written += 1
    return written


def _find(session: Session, account: str, campaign: str) -> Campaign:
    try:
        return find_campaign(session, get_or_create_account(session, account), campaign)
    except DialerError as exc:
        raise fail(str(exc)) from None


def _counters_table(counters: Mapping[str, Any]) -> Table:
    table = Table("counter (seed 003)", "value", title="Counters")
    for name, value in counters.items():
        table.add_row(name, str(value))
    return table


def _counts_table(title: str, counts: Mapping[str, int], names: Iterable[str]) -> Table:
    """Every name, zeros included, so two campaigns' tables line up; then any other key."""
    listed = [str(name) for name in names]
    table = Table("", "count", title=title)
    for name in [*listed, *sorted(set(counts) - set(listed))]:
        table.add_row(name, str(counts.get(name, 0)))
    return table
