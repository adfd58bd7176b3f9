"""``dialer campaign create|start|pause|resume|complete`` and ``dialer plan``.

The lifecycle commands lock the campaign and call one service each; ``plan`` shows who
could be called at an instant, without changing anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from pydantic import ValidationError
from sqlalchemy.orm import Session

from dialer.cli.render import print_forecast, print_plan
from dialer.cli.reports import campaign_export, campaign_status
from dialer.cli.support import AccountOpt, console
from dialer.cli.support import fail as _fail
from dialer.cli.support import runtime as _runtime
from dialer.clock import utcnow
from dialer.composition.runtime import Runtime
from dialer.errors import DialerError, describe_validation_error
from dialer.policies.forecast import DEFAULT_HORIZON_DAYS, DEFAULT_SEED, MAX_HORIZON_DAYS
from dialer.policies.vocabulary import Segment
from dialer.schemas import CampaignSpec
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.services.campaigns import create_campaign, find_campaign, legal_bound
from dialer.services.forecast import build_forecast
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
from models import Campaign

campaign_app = typer.Typer(help="Campaigns.", no_args_is_help=True)
campaign_app.command("status")(campaign_status)
campaign_app.command("export")(campaign_export)


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


def plan_cmd(
    campaign: Annotated[str, typer.Argument(help="Campaign name or id.")],
    at: Annotated[
        datetime | None, typer.Option(help="Instant to plan at (ISO 8601, UTC if no offset).")
    ] = None,
    rows: Annotated[int, typer.Option(help="How many contacts to list.")] = 40,
    forecast: Annotated[
        bool,
        typer.Option(
            "--forecast",
            help="Simulate the campaign from --at with the simulator's outcome profile "
            "(DIALER_SIMULATION): completion, calls per contact, skips, cost. Writes nothing.",
        ),
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Seed of the forecast's outcome draws (same seed, same figures).")
    ] = DEFAULT_SEED,
    horizon_days: Annotated[
        int, typer.Option(help=f"Forecast length in days (at most {MAX_HORIZON_DAYS}).")
    ] = DEFAULT_HORIZON_DAYS,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the forecast's figures as JSON.")
    ] = False,
    account: AccountOpt = DEFAULT_ACCOUNT,
) -> None:
    """Per contact: local zone, callable now or not, next opening; then the counts.

    With --forecast: the contacts run on a simulated clock instead, and the expected
    completion, calls per contact, share callable today, skips by reason and cost print.
    """
    if (as_json or seed != DEFAULT_SEED or horizon_days != DEFAULT_HORIZON_DAYS) and not forecast:
        raise _fail("--json, --seed and --horizon-days go with --forecast")
    runtime = _runtime()
    when = _aware(at) if at else utcnow(runtime.settings)
    if forecast:
        _forecast(runtime, campaign, account, when, seed, horizon_days, as_json=as_json)
        return
    with runtime.session() as session:
        try:
            target = find_campaign(session, get_or_create_account(session, account), campaign)
        except DialerError as exc:
            raise _fail(str(exc)) from None
        result = build_contact_plan(
            session, target, when, legal_bound(runtime.settings), keep_rows=rows
        )
    print_plan(console, result)


def _forecast(
    runtime: Runtime,
    campaign: str,
    account: str,
    when: datetime,
    seed: int,
    horizon_days: int,
    *,
    as_json: bool,
) -> None:
    # Rolled back whatever happens, so nothing is written (not even the account row
    # get_or_create_account would add for an unknown name).
    with runtime.read_only_session() as session:
        try:
            target = find_campaign(session, get_or_create_account(session, account), campaign)
            result = build_forecast(
                session, target, runtime.settings, at=when, seed=seed, horizon_days=horizon_days
            )
        except (DialerError, ValueError) as exc:
            raise _fail(f"cannot forecast: {exc}") from None
        name = target.name
    if as_json:
        console.print_json(data={"campaign": name, **result.to_dict()})
    else:
        print_forecast(console, name, result)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
