"""The `dialer` command: thin entrypoints over the services; rich output for people.

This module is the command tree only; each group of commands lives in its own module
of dialer.cli, and none of them imports this one.
"""

from __future__ import annotations

import typer

from dialer.cli import serve
from dialer.cli.calls import calls_app
from dialer.cli.campaigns import campaign_app, plan_cmd
from dialer.cli.customers import customers_app
from dialer.cli.infra import db_app, services_app
from dialer.cli.keys import keys_app
from dialer.cli.ops import register_ops_commands
from dialer.cli.suppressions import suppressions_app
from dialer.cli.webhooks import webhooks_app

app = typer.Typer(
    help="Campaign dialer: run outbound calling campaigns inside legal hours.", no_args_is_help=True
)
register_ops_commands(app)
app.command("worker")(serve.worker_cmd)
app.command("beat")(serve.beat_cmd)
app.command("api")(serve.api_cmd)
app.command("sandbox")(serve.sandbox_cmd)
app.command("plan")(plan_cmd)
app.command("demo")(serve.demo_cmd)
app.add_typer(db_app, name="db")
app.add_typer(campaign_app, name="campaign")
app.add_typer(customers_app, name="customers")
app.add_typer(suppressions_app, name="suppressions")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(services_app, name="services")
app.add_typer(calls_app, name="calls")
app.add_typer(keys_app, name="keys")
