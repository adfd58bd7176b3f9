"""``dialer suppressions``: the account's do-not-contact list (load a file, add, remove, list)."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from dialer.cli.support import AccountOpt, console
from dialer.cli.support import fail as _fail
from dialer.cli.support import runtime as _runtime
from dialer.csv_cells import spreadsheet_safe
from dialer.logging import mask_phone
from dialer.policies.vocabulary import SuppressionSource
from dialer.schemas import SuppressionIn
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.suppressions import (
    SOURCE_PATTERN,
    SuppressionEntry,
    add_suppressions,
    list_suppressions,
    load_numbers,
    remove_suppression,
)

suppressions_app = typer.Typer(help="The account's do-not-contact list.", no_args_is_help=True)


def _source(value: str) -> str:
    if not SOURCE_PATTERN.fullmatch(value):
        raise typer.BadParameter("lower-case letters, digits and _ . : - (at most 64)")
    return value


@suppressions_app.command("load")
def load(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="One number per line, or a CSV."),
    ],
    source: Annotated[
        str, typer.Option(callback=_source, help="Name of the list, e.g. national_dnc.")
    ],
    listed_on: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="The list's own date.")
    ] = None,
    default_region: Annotated[
        str | None, typer.Option(help="Region for numbers without +, e.g. US.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where to write the bad lines (CSV).")
    ] = None,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Load FILE into the list in batches; bad lines go to the rejects file, the rest load."""
    rejects_path = rejects or file.with_suffix(".rejected.csv")
    runtime = _runtime()
    with (
        rejects_path.open("w", newline="", encoding="utf-8") as out,
        file.open(encoding="utf-8-sig", newline="") as stream,
        runtime.session() as session,
    ):
        writer = csv.writer(out)
        writer.writerow(["line", "text", "reason"])

        def reject(line: int, raw: str, reason: str) -> None:
            writer.writerow([line, spreadsheet_safe(raw), reason])

        report = load_numbers(
            session,
            get_or_create_account(session, account).id,
            stream,
            source=source,
            listed_on=listed_on.date() if listed_on else None,
            default_region=default_region.upper() if default_region else None,
            reject=reject,
        )
    console.print(
        f"read {report.read}, added {report.added}, already listed {report.already_listed}, "
        f"rejected {report.rejected}" + (f" (see {rejects_path})" if report.rejected else "")
    )
    if not report.rejected:
        rejects_path.unlink(missing_ok=True)


@suppressions_app.command("add")
def add(
    phone: Annotated[str, typer.Argument(help="E.164 number, e.g. +12125550123.")],
    reason: Annotated[str | None, typer.Option(help="Why (kept with the number).")] = None,
    source: Annotated[str, typer.Option(callback=_source)] = str(SuppressionSource.MANUAL),
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """List one number: it is never called or messaged again in this account."""
    try:
        entry = SuppressionIn(phone=phone, source=source, reason=reason)
    except ValidationError as exc:
        raise _fail("; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())) from None
    with _runtime().session() as session:
        added = add_suppressions(
            session,
            get_or_create_account(session, account).id,
            [SuppressionEntry(entry.phone, entry.source, entry.reason, date.today())],
        )
    console.print(f"{mask_phone(entry.phone)}: {'listed' if added else 'already listed'}")


@suppressions_app.command("remove")
def remove(
    phone: Annotated[str, typer.Argument(help="E.164 number.")],
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Take a number off the list."""
    with _runtime().session() as session:
        removed = remove_suppression(session, get_or_create_account(session, account).id, phone)
    if not removed:
        raise _fail(f"{mask_phone(phone)} is not on the list")
    console.print(f"{mask_phone(phone)}: removed")


@suppressions_app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    after: Annotated[str | None, typer.Option(help="Start after this number.")] = None,
    source: Annotated[str | None, typer.Option(help="Only this list.")] = None,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Listed numbers in number order (masked)."""
    table = Table("number", "source", "listed on", "reason")
    with _runtime().session() as session:
        rows = list_suppressions(
            session,
            get_or_create_account(session, account).id,
            limit=limit,
            after=after,
            source=source,
        )
        for row in rows:
            listed = row.listed_on.isoformat() if row.listed_on else "-"
            table.add_row(mask_phone(row.phone), row.source, listed, row.reason or "")
    console.print(table)
