"""The `dialer` command: thin entrypoints over the services; rich output for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from dialer import migrate
from dialer.cli_calls import calls_app
from dialer.cli_keys import keys_app
from dialer.cli_ops import register_ops_commands
from dialer.cli_reports import campaign_export, campaign_status
from dialer.cli_support import AccountOpt, console, err_console
from dialer.cli_support import fail as _fail
from dialer.cli_support import runtime as _runtime
from dialer.clock import utcnow
from dialer.customers_csv import parse_customers
from dialer.embedded import services_status, stop_services
from dialer.errors import DialerError, describe_validation_error
from dialer.policies.vocabulary import Segment
from dialer.render import print_import_report, print_plan
from dialer.schemas import CampaignSpec
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.campaigns import create_campaign, find_campaign, legal_bound
from dialer.services.imports import ImportRejected, import_customers
from dialer.services.lifecycle import (
    ResumeResult,
    complete_campaign,
    lock_campaign,
    pause_campaign,
    resume_campaign,
    resume_counts,
    start_campaign,
)
from dialer.services.plan import build_contact_plan
from dialer.settings import get_settings
from models import Campaign

app = typer.Typer(
    help="Campaign dialer: run outbound calling campaigns inside legal hours.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns.", no_args_is_help=True)
customers_app = typer.Typer(help="Customers.", no_args_is_help=True)
services_app = typer.Typer(help="The embedded PostgreSQL and Redis.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(campaign_app, name="campaign")
app.add_typer(customers_app, name="customers")
app.add_typer(services_app, name="services")
app.add_typer(calls_app, name="calls")
app.add_typer(keys_app, name="keys")
campaign_app.command("status")(campaign_status)
campaign_app.command("export")(campaign_export)
register_ops_commands(app)


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


@campaign_app.command("create")
def campaign_create(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON file.")],
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Create a campaign from FILE (fields of seed 002 CampaignOut)."""
    spec = _load_spec(file)
    runtime = _runtime()
    try:
        with runtime.session() as session:
            campaign = create_campaign(
                session,
                get_or_create_account(session, account),
                spec,
                legal_bound(runtime.settings),
            )
            console.print(
                f"created campaign [bold]{campaign.name}[/] "
                f"id={campaign.id} status={campaign.status}"
            )
    except DialerError as exc:
        raise _fail(f"{file}: {exc}") from None


def _load_spec(file: Path) -> CampaignSpec:
    try:
        data: Any = (
            yaml.safe_load(file.read_text())
            if file.suffix in {".yaml", ".yml"}
            else json.loads(file.read_text())
        )
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise _fail(f"{file}: not valid {file.suffix.lstrip('.')}: {exc}") from None
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as exc:
        lines = "\n".join(f"  {f}: {r}" for f, r in describe_validation_error(exc))
        raise _fail(f"{file} is not a valid campaign:\n{lines}") from None


def _control(
    campaign: str, account: str, action: Callable[[Session, Campaign, datetime], object]
) -> None:
    runtime = _runtime()
    try:
        with runtime.session() as session:
            target = find_campaign(session, get_or_create_account(session, account), campaign)
            locked = lock_campaign(session, target.id)
            result = action(session, locked, utcnow(runtime.settings))
            console.print(f"campaign [bold]{locked.name}[/] is {locked.status}")
            if isinstance(result, ResumeResult):
                console.print_json(data=resume_counts(result))
    except DialerError as exc:
        raise _fail(str(exc)) from None


@campaign_app.command("start")
def campaign_start(campaign: str, account: AccountOpt = DEFAULT_ACCOUNT) -> None:
    """draft/paused -> running (a done campaign cannot restart: use resume)."""
    _control(campaign, account, start_campaign)


@campaign_app.command("pause")
def campaign_pause(campaign: str, account: AccountOpt = DEFAULT_ACCOUNT) -> None:
    """running -> paused: no new calls; calls in flight finish."""
    _control(campaign, account, pause_campaign)


@campaign_app.command("complete")
def campaign_complete(campaign: str, account: AccountOpt = DEFAULT_ACCOUNT) -> None:
    """-> done: pending attempts canceled; calls in flight are still recorded."""
    _control(campaign, account, complete_campaign)


@campaign_app.command("resume")
def campaign_resume(
    campaign: str,
    segment: Annotated[Segment, typer.Option(help="Who to contact again.")] = Segment.NOT_ANSWERED,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """done/paused -> running, with a new round for SEGMENT (seed 002 CampaignResumeResult)."""
    _control(campaign, account, lambda s, c, now: resume_campaign(s, c, segment, now))


@app.command("worker")
def worker_cmd(
    queues: Annotated[
        str, typer.Option(help="Queues to consume.")
    ] = "scan,dispatch,results,messages,events",
    concurrency: Annotated[int | None, typer.Option(help="Processes (default: settings).")] = None,
) -> None:
    """Run a Celery worker with the project's settings."""
    from tasks.app import app as celery_app

    argv = ["worker", "-Q", queues, "--loglevel", "INFO"]
    if concurrency:
        argv += ["-c", str(concurrency)]
    celery_app.worker_main(argv)


@app.command("beat")
def beat_cmd() -> None:
    """Run Celery beat (the due-scan, relay, reaper). Run exactly one."""
    from tasks.app import app as celery_app

    schedule = Path(get_settings().home) / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    celery_app.start(["beat", "--loglevel", "INFO", "-s", str(schedule)])


@app.command("api")
def api_cmd() -> None:
    """Serve the control API and the webhook ingress on api_host:api_port."""
    from dialer.api import create_app, serve_app, serve_metrics
    from tasks.pipeline import apply_event

    runtime = _runtime()
    app_ = create_app(
        runtime.settings,
        runtime.session,
        enqueue_apply=lambda inbox_id: apply_event.delay(str(inbox_id)),
        readiness=runtime.readiness_checks(),
    )
    serve_metrics(runtime.settings, runtime.session, lambda: utcnow(runtime.settings))
    serve_app(app_, runtime.settings)


@app.command("sandbox")
def sandbox_cmd(
    faults: Annotated[
        str | None,
        typer.Option(help='Fault knobs as JSON, e.g. \'{"rate_5xx": 0.1, "rate_429": 0.05}\'.'),
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: settings.sandbox_port).")] = None,
) -> None:
    """Serve the sandbox provider (seed 004 voice API + WhatsApp Cloud-style) for tests/demos."""
    from dialer.sandbox import run_sandbox

    settings = get_settings()
    try:
        overrides = {"faults": json.loads(faults)} if faults else None
    except json.JSONDecodeError as exc:
        raise _fail(f"--faults is not JSON: {exc}") from None
    run_sandbox(settings, port=port, overrides=overrides)


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
                parse_customers(stream, default_region=default_region),
                partial=partial,
            )
    except ImportRejected as exc:
        print_import_report(err_console, exc.report, rejects_path, committed=False)
        raise _fail(str(exc)) from None
    except (DialerError, ValueError) as exc:
        raise _fail(f"{file}: {exc}") from None
    print_import_report(console, report, rejects_path, committed=True)


@app.command("plan")
def plan(
    campaign: Annotated[str, typer.Argument(help="Campaign name or id.")],
    at: Annotated[
        datetime | None, typer.Option(help="Instant to plan at (ISO 8601, UTC if no offset).")
    ] = None,
    rows: Annotated[int, typer.Option(help="How many contacts to list.")] = 40,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Per contact: local zone, callable now or not, next opening; then the counts."""
    runtime = _runtime()
    when = _aware(at) if at else utcnow(runtime.settings)
    with runtime.session() as session:
        try:
            target = find_campaign(session, get_or_create_account(session, account), campaign)
        except DialerError as exc:
            raise _fail(str(exc)) from None
        result = build_contact_plan(
            session, target, when, legal_bound(runtime.settings), keep_rows=rows
        )
    print_plan(console, result)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@services_app.command("status")
def services_status_cmd() -> None:
    """Show the embedded servers of this folder."""
    console.print_json(data=services_status(get_settings()))


@services_app.command("stop")
def services_stop() -> None:
    """Stop the embedded PostgreSQL and Redis of this folder."""
    stop_services(get_settings())
    console.print("embedded servers stopped")


@app.command("demo")
def demo(
    keep_running: Annotated[bool, typer.Option(help="Leave the embedded servers running.")] = False,
    via_sandbox: Annotated[
        bool,
        typer.Option(
            help="Run through the real channels: HTTP adapters, `dialer sandbox` (with some "
            "5xx/429/dropped webhooks) and signed webhooks into `dialer api`."
        ),
    ] = False,
) -> None:
    """Run the example campaign on the embedded servers with real worker and beat processes."""
    from dialer.demo import run_demo

    sys.exit(run_demo(console, keep_running=keep_running, via_sandbox=via_sandbox))
