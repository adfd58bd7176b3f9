"""``dialer calls``: the call attempts of an account, as ``GET /calls`` lists them.

Same parameters, same service (dialer.services.calls_query) and, with ``--json``,
the same JSON as the API. Kept out of dialer.cli.main so that module stays a list of
commands; this one must not import dialer.cli.main (which imports it).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dialer.cli import support as cli_support
from dialer.cli.support import AccountOpt
from dialer.errors import DialerError
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.calls_query import DEFAULT_LIMIT, build_query, list_calls
from dialer.services.campaigns import find_campaign

if TYPE_CHECKING:
    from dialer.api.schemas_calls import CallsPageOut

calls_app = typer.Typer(help="Call attempts.", no_args_is_help=True)


@calls_app.command("list")
def calls_list(
    status: Annotated[str | None, typer.Option(help="Statuses, comma-separated.")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="Outcomes, comma-separated; 'null' = no outcome yet.")
    ] = None,
    campaign: Annotated[
        str | None, typer.Option(help="Campaign name or id: customers enrolled in it.")
    ] = None,
    customer_id: Annotated[uuid.UUID | None, typer.Option(help="Customer id (uuid).")] = None,
    q: Annotated[
        str | None, typer.Option("--q", "-q", help="Search name/surname/phone/ids.")
    ] = None,
    date_from: Annotated[str | None, typer.Option(help="Recent activity from (ISO).")] = None,
    date_to: Annotated[str | None, typer.Option(help="Recent activity to (ISO).")] = None,
    limit: Annotated[int, typer.Option(help="Rows, 1..200.")] = DEFAULT_LIMIT,
    offset: Annotated[int, typer.Option(help="Rows to skip.")] = 0,
    sort_field: Annotated[str | None, typer.Option(help="Default created_at.")] = None,
    sort_dir: Annotated[str, typer.Option(help="asc or desc.")] = "desc",
    aggregations: Annotated[
        bool, typer.Option("--aggregations", help="Also count per status and outcome.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """List call attempts with their customer and campaigns (like GET /calls)."""
    # Here, not at the top: importing dialer.api loads FastAPI, which every other
    # `dialer` command would then pay for at start-up.
    from dialer.api.schemas_calls import calls_page_out

    runtime = cli_support.runtime()
    try:
        with runtime.session() as session:
            owner = get_or_create_account(session, account)
            campaign_id = find_campaign(session, owner, campaign).id if campaign else None
            query = build_query(
                status=status,
                outcome=outcome,
                campaign_id=campaign_id,
                customer_id=customer_id,
                q=q,
                date_from=date_from,
                date_to=date_to,
                limit=limit,
                offset=offset,
                sort_field=sort_field,
                sort_dir=sort_dir,
                include_aggregations=aggregations,
            )
            answer = calls_page_out(list_calls(session, owner.id, query), query)
    except DialerError as exc:
        raise cli_support.fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(answer.model_dump(mode="json"), indent=2))
    else:
        _print_page(answer)


def _print_page(answer: CallsPageOut) -> None:
    table = Table(
        "attempt",
        "status",
        "outcome",
        "customer",
        "phone",
        "campaign",
        "no",
        "scheduled",
        "finished",
    )
    for row in answer.data:
        attempt, customer = row.attempt, row.customer
        person = " ".join(p for p in (customer.name, customer.surname) if p) or "-"
        table.add_row(
            str(attempt.id),
            attempt.status,
            attempt.outcome or "-",
            person,
            customer.phone or "-",
            attempt.campaign.name if attempt.campaign else "-",
            str(attempt.attempt_no),
            _when(attempt.scheduled_at),
            _when(attempt.finished_at),
        )
    cli_support.console.print(table)
    meta = answer.meta
    shown = f"{meta.offset + 1}-{meta.offset + len(answer.data)}" if answer.data else "none"
    cli_support.console.print(f"showing {shown} of {meta.total}")
    if answer.aggregations and answer.aggregations.quick_filters:
        counts = answer.aggregations.quick_filters
        cli_support.console.print(" ".join(f"{key}:{n}" for key, n in counts.items() if n))


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"
