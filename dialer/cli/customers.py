"""``dialer customers import``: enrol a CSV of customers in a campaign, bad rows reported."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dialer.cli.render import print_import_report
from dialer.cli.support import AccountOpt, console, err_console
from dialer.cli.support import fail as _fail
from dialer.cli.support import runtime as _runtime
from dialer.customers_csv import parse_customers
from dialer.errors import DialerError
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.campaigns import find_campaign
from dialer.services.imports import ImportRejected, import_customers

customers_app = typer.Typer(help="Customers.", no_args_is_help=True)


@customers_app.command("import")
def customers_import(
    campaign: Annotated[str, typer.Argument(help="Campaign name or id.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a header line.")
    ],
    partial: Annotated[
        bool, typer.Option(help="Import the good rows even when some are bad.")
    ] = False,
    default_region: Annotated[
        str | None, typer.Option(help="Region for numbers without +, e.g. US.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Where to write rejected rows (CSV).")
    ] = None,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Enrol the customers of FILE in CAMPAIGN; every bad row is reported with its line."""
    runtime = _runtime()
    rejects_path = rejects or file.with_suffix(".rejected.csv")
    try:
        with runtime.session() as session, file.open(newline="", encoding="utf-8-sig") as stream:
            target = find_campaign(session, get_or_create_account(session, account), campaign)
            report = import_customers(
                session,
                target,
                parse_customers(stream, default_region=default_region, dedupe=False),
                partial=partial,
            )
    except ImportRejected as exc:
        print_import_report(err_console, exc.report, rejects_path, committed=False)
        raise _fail(str(exc)) from None
    except (DialerError, ValueError) as exc:
        raise _fail(f"{file}: {exc}") from None
    print_import_report(console, report, rejects_path, committed=True)
