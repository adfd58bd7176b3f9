"""``dialer webhooks``: the account's event webhook endpoints and their delivery log (issue 17)."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from dialer.cli.support import AccountOpt, console
from dialer.cli.support import fail as _fail
from dialer.cli.support import runtime as _runtime
from dialer.clock import utcnow
from dialer.errors import DialerError
from dialer.policies.vocabulary import WebhookDeliveryStatus, WebhookEventType
from dialer.services import webhooks
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account

webhooks_app = typer.Typer(help="Outbound event webhooks of the account.", no_args_is_help=True)

EndpointArg = Annotated[uuid.UUID, typer.Argument(help="The endpoint's id (see `list`).")]
ALL_EVENTS = [str(word) for word in WebhookEventType]


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="http(s) URL the events are POSTed to.")],
    event: Annotated[
        list[WebhookEventType] | None,
        typer.Option("--event", "-e", help="An event to receive (repeat); default: all."),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Register an endpoint; prints its signing secret, shown this once."""
    runtime = _runtime()
    events = [str(word) for word in event] if event else ALL_EVENTS
    try:
        with runtime.session() as session:
            made = webhooks.create_endpoint(
                session,
                get_or_create_account(session, account).id,
                url,
                events,
                allow_private=runtime.settings.webhook_allow_private_urls,
                description=description,
            )
            endpoint_id = made.endpoint.id
    except DialerError as exc:
        raise _fail(str(exc)) from None
    console.print(f"endpoint {endpoint_id}: {', '.join(events)}")
    console.print(f"secret {made.secret} (shown once: keep it to verify signatures)")


@webhooks_app.command("list")
def list_(account: AccountOpt = DEFAULT_ACCOUNT) -> None:
    """The endpoints, with their state: enabled, or disabled and why."""
    table = Table("id", "url", "events", "state", "failures")
    with _runtime().session() as session:
        for row in webhooks.list_endpoints(session, get_or_create_account(session, account).id):
            state = "enabled" if row.enabled else f"DISABLED: {row.disabled_reason}"
            table.add_row(
                str(row.id), row.url, ", ".join(row.events), state, str(row.consecutive_failures)
            )
    console.print(table)


@webhooks_app.command("remove")
def remove(endpoint_id: EndpointArg, account: AccountOpt = DEFAULT_ACCOUNT) -> None:
    """Delete an endpoint and its delivery log."""
    try:
        with _runtime().session() as session:
            webhooks.remove_endpoint(
                session, get_or_create_account(session, account).id, endpoint_id
            )
    except DialerError as exc:
        raise _fail(str(exc)) from None
    console.print(f"endpoint {endpoint_id}: removed")


@webhooks_app.command("enable")
def enable(
    endpoint_id: EndpointArg,
    off: Annotated[bool, typer.Option("--off", help="Disable it instead.")] = False,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Enable an endpoint again (failures reset, owed deliveries resume), or --off."""
    runtime = _runtime()
    try:
        with runtime.session() as session:
            webhooks.set_enabled(
                session,
                get_or_create_account(session, account).id,
                endpoint_id,
                not off,
                utcnow(runtime.settings),
            )
    except DialerError as exc:
        raise _fail(str(exc)) from None
    console.print(f"endpoint {endpoint_id}: {'disabled' if off else 'enabled'}")


@webhooks_app.command("deliveries")
def deliveries(
    endpoint_id: EndpointArg,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    status: Annotated[WebhookDeliveryStatus | None, typer.Option(help="Only this status.")] = None,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """The endpoint's delivery log, newest first."""
    table = Table("id", "event", "event id", "status", "tries", "last", "next try")
    try:
        with _runtime().session() as session:
            rows = webhooks.list_deliveries(
                session,
                get_or_create_account(session, account).id,
                endpoint_id,
                limit=limit,
                status=None if status is None else str(status),
            )
            for row in rows:
                last = row.last_error or (str(row.last_status_code or "") or "-")
                upcoming = row.next_attempt_at.isoformat() if row.next_attempt_at else "-"
                table.add_row(
                    str(row.id), row.event_type, str(row.event_id), str(row.status),
                    str(row.attempts), last, upcoming,
                )  # fmt: skip
    except DialerError as exc:
        raise _fail(str(exc)) from None
    console.print(table)
