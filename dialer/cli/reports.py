"""``dialer campaign status`` and ``dialer campaign export``: what a campaign did.

status prints seed 003's counters, the enrollment states, the call outcomes and the
window audit; export writes one CSV row per enrolled customer, streamed from the
database, for spreadsheets and CRMs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from dialer.cli.support import AccountOpt, console, fail, runtime
from dialer.errors import DialerError
from dialer.policies.vocabulary import EnrollmentState, Outcome
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.campaigns import find_campaign, legal_bound
from dialer.services.exports import RESULT_COLUMNS, ResultRow, campaign_results
from dialer.services.reports import campaign_report
from models import Campaign

CampaignArg = Annotated[str, typer.Argument(help="Campaign name or id.")]


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


def campaign_export(
    campaign: CampaignArg,
    out: Annotated[Path, typer.Option("--out", dir_okay=False, help="CSV file to write.")],
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """One CSV row per enrolled customer: state, calls made, latest outcome, cost, goal met."""
    rt = runtime()
    with rt.session() as session:
        target = _find(session, account, campaign)
        with out.open("w", newline="", encoding="utf-8") as stream:
            written = write_results(stream, campaign_results(session, target.id))
        name = target.name
    console.print(f"{written} customers of [bold]{name}[/] written to {out}")


def write_results(stream: TextIO, rows: Iterable[ResultRow]) -> int:
    """Write the header and ``rows`` as they come; returns how many rows were written."""
    writer = csv.writer(stream)
    writer.writerow(RESULT_COLUMNS)
    written = 0
    for row in rows:
        writer.writerow(row.values())
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
