"""``dialer keys``: API keys for the control API, for operators.

A key's secret is printed once, when it is created; only its hash is stored, so it
can never be shown again. Listing shows what identifies a key (its prefix, name and
scopes), never the hash.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dialer.cli.support import AccountOpt, console, err_console, fail, runtime
from dialer.clock import utcnow
from dialer.errors import DialerError
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.api_keys import SCOPES, issue_key, list_keys, revoke_key
from models import ApiKey

keys_app = typer.Typer(help="API keys of the control API.", no_args_is_help=True)

ScopeOpt = Annotated[
    list[str],
    typer.Option("--scope", help=f"A scope the key grants (repeat): {', '.join(SCOPES)}."),
]


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="What the key is for, e.g. crm-sync.")],
    scope: ScopeOpt,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Create a key; its secret is printed once and cannot be shown again."""
    rt = runtime()
    try:
        with rt.session() as session:
            issued = issue_key(session, get_or_create_account(session, account).id, name, scope)
            prefix, scopes = issued.key.prefix, issued.key.scopes
    except DialerError as exc:
        raise fail(str(exc)) from None
    # Only the secret goes to stdout, so a script can capture it: SECRET=$(dialer keys create ...)
    err_console.print(
        f"created API key [bold]{prefix}[/] ({escape(name)}) scopes={','.join(scopes)}"
    )
    console.print(issued.secret, markup=False, highlight=False, soft_wrap=True)
    err_console.print(
        "[bold yellow]warning:[/] store this secret now: it is not stored and is not shown again"
    )


@keys_app.command("list")
def keys_list(account: AccountOpt = DEFAULT_ACCOUNT) -> None:
    """The account's keys, oldest first: prefix, name, scopes, created, revoked."""
    rt = runtime()
    with rt.session() as session:
        keys = list_keys(session, get_or_create_account(session, account).id)
        console.print(_keys_table(account, keys))


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, e.g. sk_1a2b3c4d.")],
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Revoke a key: requests with it are refused from now on (revoking twice is harmless)."""
    rt = runtime()
    try:
        with rt.session() as session:
            account_id = get_or_create_account(session, account).id
            key = revoke_key(session, account_id, prefix, utcnow(rt.settings))
            revoked_at = key.revoked_at
    except DialerError as exc:
        raise fail(str(exc)) from None
    console.print(f"API key [bold]{prefix}[/] revoked at {revoked_at:%Y-%m-%d %H:%M} UTC")


def _keys_table(account: str, keys: list[ApiKey]) -> Table:
    table = Table("prefix", "name", "scopes", "created", "revoked", title=f"API keys of {account}")
    for key in keys:
        table.add_row(
            key.prefix,
            escape(key.name),
            ", ".join(key.scopes),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
        )
    return table
