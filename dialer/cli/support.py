"""What every `dialer` command module shares: consoles, failing with a message, bootstrap.

Command modules registered on dialer.cli.main import this, never dialer.cli.main (which
imports them).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from dialer.composition import Runtime, bootstrap
from dialer.errors import DialerError

# Wide enough for tables when output is piped (rich defaults to 80 columns then).
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 150)
AccountOpt = Annotated[str, typer.Option("--account", help="Account (tenant) name.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error; raise the returned Exit to stop with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def runtime() -> Runtime:
    try:
        return bootstrap()
    except DialerError as exc:
        raise fail(str(exc)) from None
