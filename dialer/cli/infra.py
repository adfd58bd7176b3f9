"""``dialer db upgrade|downgrade`` and ``dialer services status|stop``: schema and servers."""

from __future__ import annotations

import typer

from dialer import migrate
from dialer.cli.support import console
from dialer.cli.support import runtime as _runtime
from dialer.embedded import services_status, stop_services
from dialer.settings import get_settings

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
services_app = typer.Typer(help="The embedded PostgreSQL and Redis.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    runtime = _runtime()
    migrate.upgrade(runtime.database_url, revision)
    console.print(f"database at revision [bold]{migrate.current_revision(runtime.database_url)}[/]")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base")) -> None:
    """Revert migrations down to REVISION."""
    runtime = _runtime()
    migrate.downgrade(runtime.database_url, revision)
    console.print(f"database at revision [bold]{migrate.current_revision(runtime.database_url)}[/]")


@services_app.command("status")
def services_status_cmd() -> None:
    """Show the embedded servers of this folder."""
    console.print_json(data=services_status(get_settings()))


@services_app.command("stop")
def services_stop() -> None:
    """Stop the embedded PostgreSQL and Redis of this folder."""
    stop_services(get_settings())
    console.print("embedded servers stopped")
