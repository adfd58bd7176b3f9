"""The demo's dashboard: `dialer api` serves /ui while the campaign runs, with a key to
sign in that the demo issues for its own account and revokes when it ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console

from dialer.composition import Runtime
from dialer.services.accounts import get_or_create_account
from dialer.services.api_keys import SCOPES, issue_key, revoke_key

KEY_NAME = "demo dashboard"


@dataclass(frozen=True)
class DashboardAccess:
    url: str
    account: str
    key_prefix: str


def open_dashboard(
    console: Console, runtime: Runtime, env: dict[str, str], account: str
) -> DashboardAccess:
    """Issue the sign-in key and print where the dashboard is; `dialer api` must be up."""
    url = f"http://127.0.0.1:{env['DIALER_API_PORT']}/ui"
    with runtime.session() as session:
        owner = get_or_create_account(session, account)
        issued = issue_key(session, owner.id, KEY_NAME, SCOPES)
    console.print(
        f"[bold]dashboard:[/] {url}  (sign in with the API key [bold]{issued.secret}[/]: "
        f"account {account!r}, revoked when the demo ends)"
    )
    return DashboardAccess(url, account, issued.key.prefix)


def close_dashboard(runtime: Runtime, access: DashboardAccess) -> None:
    with runtime.session() as session:
        owner = get_or_create_account(session, access.account)
        revoke_key(session, owner.id, access.key_prefix, datetime.now(UTC))
