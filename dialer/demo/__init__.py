"""`make demo`: a real campaign on the embedded PostgreSQL and Redis, in about a minute.

Real Celery worker and beat processes, the simulated provider (or, with
--via-sandbox, the HTTP adapters against `dialer sandbox` with results coming back
as signed webhooks through `dialer api`; --flavor picks the provider the sandbox
plays and the dialer's adapter: seed004, vapi, retell, twilio or elevenlabs), and a
clock that
runs fast (DEMO_SPEED simulated seconds per real second, shared by every process
through the environment), so a multi-day campaign with working hours in a dozen
countries, retries, the WhatsApp fallback and goals plays out while you watch.
Re-runnable: the demo account's campaign is replaced on every run.
"""

from __future__ import annotations

import json
import secrets
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from dialer import migrate
from dialer.cli.render import print_import_report, print_plan
from dialer.clock import utcnow
from dialer.composition import Runtime, bootstrap
from dialer.customers_csv import parse_customers
from dialer.demo.dashboard import (
    DashboardAccess,
    close_dashboard,
    open_dashboard,
)
from dialer.demo.history import EARLIER_CAMPAIGN, demo_start, seed_earlier_calls
from dialer.embedded import stop_services
from dialer.errors import DialerError
from dialer.phones import normalize_phone
from dialer.processes import ProcessGroup, fast_clock_env
from dialer.sandbox.connect import LOST_ANSWER_HOLD_SECONDS, agent_id_for, dialer_env
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign, legal_bound
from dialer.services.imports import import_customers
from dialer.services.lifecycle import lock_campaign, start_campaign
from dialer.services.plan import build_contact_plan
from dialer.services.reports import CampaignReport, campaign_report
from dialer.services.suppressions import load_numbers
from dialer.settings import PROVIDER_SECRETS, Settings
from models import CallAttempt, Campaign, Enrollment, Message

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEMO_ACCOUNT = "demo"
DEMO_SPEED = 10800.0  # three simulated hours per real second
DEMO_TIMEOUT_SECONDS = 240
# --via-sandbox: the provider misbehaves a little, as real ones do.
SANDBOX_FAULTS = {
    "rate_5xx": 0.05,
    "rate_429": 0.02,
    "drop_webhook_rate": 0.02,
    "rate_lost_response": 0.02,  # the call is placed, its answer never arrives
    "hang_seconds": LOST_ANSWER_HOLD_SECONDS,
}


def _stop_on_sigterm() -> None:
    """SIGTERM (an operator's kill, a closing terminal) cleans up like Ctrl-C does."""

    def _raise(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)


def run_demo(
    console: Console,
    *,
    keep_running: bool = False,
    via_sandbox: bool = False,
    flavor: str = "seed004",
    examples: Path = EXAMPLES,
) -> int:
    _stop_on_sigterm()
    runtime = bootstrap()
    group: ProcessGroup | None = None
    dashboard: DashboardAccess | None = None
    try:
        console.rule("[bold]Campaign dialer demo")
        migrate.upgrade(runtime.database_url)
        spec = _example_spec(examples, flavor if via_sandbox else None)
        sim_start = demo_start(datetime.now(UTC))
        campaign_id = _load_example(console, runtime, spec, examples, sim_start)
        with runtime.session() as session:
            campaign = session.get_one(Campaign, campaign_id)
            plan = build_contact_plan(
                session, campaign, sim_start, legal_bound(runtime.settings), keep_rows=12
            )
        print_plan(console, plan)
        env = _demo_env(runtime, sim_start)
        if via_sandbox:
            numbers = spec.agent.phone_numbers if spec.agent else []
            env |= _sandbox_env(flavor, [str(number) for number in numbers])
        env.setdefault("DIALER_API_PORT", str(_free_port()))  # the sandbox run chose one
        settings = runtime.settings.model_copy(update=_clock_fields(env))
        group = ProcessGroup(env=env, log_dir=Path(runtime.settings.home) / "demo-logs")
        if via_sandbox:
            _start_channels(console, group, env, flavor)
        else:  # the dashboard's server: with the simulated provider, it takes no webhooks
            group.dialer("api", ["api"])
            _wait_until_up(f"http://127.0.0.1:{env['DIALER_API_PORT']}/healthz", "api", group)
        dashboard = open_dashboard(console, runtime, env, DEMO_ACCOUNT)
        group.worker(concurrency=2)
        group.beat()
        console.print(
            f"worker and beat started (logs in {group.log_dir}); simulated clock starts "
            f"{sim_start:%a %Y-%m-%d %H:%M} UTC at {DEMO_SPEED / 3600:g} h per second"
        )
        with runtime.session() as session:
            start_campaign(session, lock_campaign(session, campaign_id), utcnow(settings))
        finished = _watch(console, runtime, settings, campaign_id, group)
        _print_report(console, runtime, campaign_id, settings)
        return 0 if finished else 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping every process the demo started[/]")
        return 130
    finally:
        if group is not None:
            group.stop()
        if dashboard is not None:
            close_dashboard(runtime, dashboard)
        runtime.dispose()
        if not keep_running:
            stop_services(runtime.settings)


def _example_spec(examples: Path, flavor: str | None) -> CampaignSpec:
    """The example campaign; through a sandbox flavour, with an agent id its provider takes."""
    raw = yaml.safe_load((examples / "campaign.yaml").read_text())
    if flavor is not None:
        agent = raw["agent"]
        agent["provider_agent_id"] = agent_id_for(flavor, agent["provider_agent_id"])
    return CampaignSpec.model_validate(raw)


def _load_example(
    console: Console, runtime: Runtime, spec: CampaignSpec, examples: Path, start: datetime
) -> uuid.UUID:
    with runtime.session() as session:
        account = get_or_create_account(session, DEMO_ACCOUNT)
        session.execute(
            delete(Campaign).where(Campaign.account_id == account.id, Campaign.name == spec.name)
        )
        campaign = create_campaign(session, account, spec, legal_bound(runtime.settings))
        with (examples / "customers.csv").open(newline="") as stream:
            report = import_customers(session, campaign, parse_customers(stream), partial=True)
        rejects = Path(runtime.settings.home) / "customers.rejected.csv"
        # With configured servers nothing else creates the home on a fresh checkout.
        rejects.parent.mkdir(parents=True, exist_ok=True)
        print_import_report(console, report, rejects, committed=True)
        listed = _load_suppressions(session, account.id, examples / "suppressions.txt")
        console.print(
            f"do-not-contact list: {listed} number(s) of {examples.name}/suppressions.txt"
        )
        called = seed_earlier_calls(
            session, account, spec, examples / "customers.csv", start, legal_bound(runtime.settings)
        )
        console.print(
            f"the account's campaign {EARLIER_CAMPAIGN!r} calls {called} Miami customer(s) "
            "every 8 h from Sunday to Wednesday (Florida allows 3 calls in 24 h)"
        )
        return campaign.id


def _load_suppressions(session: Session, account_id: uuid.UUID, path: Path) -> int:
    if not path.exists():
        return 0
    with path.open(encoding="utf-8") as stream:
        lines = (line for line in stream if not line.startswith("#"))
        report = load_numbers(
            session,
            account_id,
            lines,
            source="demo_dnc",
            listed_on=None,
            default_region=None,
            reject=lambda *_: None,
        )
    return report.added + report.already_listed


def _demo_env(runtime: Runtime, sim_start: datetime) -> dict[str, str]:
    return {
        "DIALER_DATABASE_URL": runtime.database_url,
        "DIALER_REDIS_URL": runtime.redis_url,
        "DIALER_HOME": str(Path(runtime.settings.home).resolve()),
        "DIALER_SCAN_INTERVAL_SECONDS": "0.25",
        "DIALER_SIMULATION": json.dumps({"seed": 42}),
        "DIALER_SIMULATION_NAMESPACE": f"demo-{uuid.uuid4().hex[:8]}",
        "DIALER_LOG_FORMAT": "json",
        # A campaign finishes when its last enrollments close (the finish mark); more
        # than three last closes in concurrent transactions can all miss the mark, and
        # the safety sweep (5 min by default) then finishes it. The demo's whole run is
        # a few minutes: sweep often.
        "DIALER_FINISH_SWEEP_SECONDS": "10",
        **fast_clock_env(sim_start, DEMO_SPEED, datetime.now(UTC)),
    }


def _sandbox_env(flavor: str, phone_numbers: list[str]) -> dict[str, str]:
    """Real channels: the flavour's adapter talks to `dialer sandbox --flavor`, events come
    back signed its way through `dialer api`. Faults on: the run shows retries and
    reconciliation at work. Every secret is drawn fresh for this run."""
    sandbox, api = _free_port(), _free_port()
    caller_ids = [normalize_phone(number) for number in phone_numbers]
    return {
        "DIALER_WHATSAPP_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "DIALER_SANDBOX_PORT": str(sandbox),
        "DIALER_API_PORT": str(api),
        "DIALER_PUBLIC_WEBHOOK_BASE_URL": f"http://127.0.0.1:{api}",
        "DIALER_MAX_CALL_SECONDS": "5",  # real seconds: a dropped final webhook is reconciled
        # A real provider refuses the public sandbox secrets: fresh ones for this run.
        **{f"DIALER_{name.upper()}": _fresh_secret(name) for name in PROVIDER_SECRETS},
        "DIALER_PROVIDER_BASE_URL": f"http://127.0.0.1:{sandbox}",
        **dialer_env(
            flavor,
            f"http://127.0.0.1:{sandbox}",
            caller_ids,
            calls_per_second=40,
            fresh=_fresh_secret,
        ),
    }


def _fresh_secret(name: str) -> str:
    # The sandbox speaks seed 004, whose API keys start with sk_.
    prefix = "sk_" if name == "provider_api_key" else ""
    return prefix + secrets.token_urlsafe(24)


def _start_channels(
    console: Console, group: ProcessGroup, env: dict[str, str], flavor: str
) -> None:
    faults = json.dumps(SANDBOX_FAULTS)
    group.dialer("sandbox", ["sandbox", "--flavor", flavor, "--faults", faults])
    group.dialer("api", ["api"])
    for name, url in (
        ("sandbox", f"{env['DIALER_PROVIDER_BASE_URL']}/sandbox/health"),
        ("api", f"{env['DIALER_PUBLIC_WEBHOOK_BASE_URL']}/healthz"),
    ):
        _wait_until_up(url, name, group)
    console.print(
        f"sandbox provider ({flavor}) on {env['DIALER_PROVIDER_BASE_URL']} "
        f"(faults {SANDBOX_FAULTS}), "
        f"webhook ingress on {env['DIALER_PUBLIC_WEBHOOK_BASE_URL']}"
    )


def _wait_until_up(url: str, name: str, group: ProcessGroup, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not all(group.alive()):
            break
        time.sleep(0.2)
    raise DialerError(f"`dialer {name}` did not start; see {group.log_dir / (name + '.log')}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clock_fields(env: dict[str, str]) -> dict[str, object]:
    return {
        "clock_speed": float(env["DIALER_CLOCK_SPEED"]),
        "clock_anchor_real": datetime.fromisoformat(env["DIALER_CLOCK_ANCHOR_REAL"]),
        "clock_anchor_sim": datetime.fromisoformat(env["DIALER_CLOCK_ANCHOR_SIM"]),
    }


def _watch(
    console: Console,
    runtime: Runtime,
    settings: Settings,
    campaign_id: uuid.UUID,
    group: ProcessGroup,
) -> bool:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
    )
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    with Progress(*columns, console=console, refresh_per_second=4) as progress:
        task = progress.add_task("contacts closed", total=None, stats="")
        while time.monotonic() < deadline:
            snap = _snapshot(runtime, campaign_id)
            sim_now = utcnow(settings)
            progress.update(
                task,
                total=snap.total,
                completed=snap.closed,
                description=f"{sim_now:%a %d %b %H:%M} UTC",
                stats=_stats_line(snap),
            )
            if snap.status == "done":
                return True
            if not all(group.alive()):
                console.print("[red]a worker or beat process died; see its log[/]")
                return False
            time.sleep(0.5)
    console.print(f"[red]not finished after {DEMO_TIMEOUT_SECONDS}s[/]")
    return False


@dataclass(frozen=True)
class Snapshot:
    status: str | None
    total: int
    closed: int
    goal_met: int
    calls: int
    answered: int
    whatsapp: int


def _snapshot(runtime: Runtime, campaign_id: uuid.UUID) -> Snapshot:
    with runtime.session() as session:
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        total, closed, goal = session.execute(
            select(
                func.count(),
                func.count().filter(Enrollment.state != "active"),
                func.count().filter(Enrollment.state == "goal_met"),
            ).where(Enrollment.campaign_id == campaign_id)
        ).one()
        calls, answered = session.execute(
            select(
                func.count().filter(CallAttempt.dispatched_at.is_not(None)),
                func.count().filter(CallAttempt.outcome == "answered"),
            ).where(CallAttempt.campaign_id == campaign_id)
        ).one()
        whatsapp = session.scalar(
            select(func.count()).where(
                Message.campaign_id == campaign_id,
                Message.direction == "outbound",
                Message.sent_at.is_not(None),
            )
        )
    return Snapshot(status, total, closed, goal, calls, answered, whatsapp or 0)


def _stats_line(snap: Snapshot) -> str:
    return (
        f"calls {snap.calls}  answered {snap.answered}  whatsapp {snap.whatsapp}  "
        f"goal met {snap.goal_met}"
    )


def _print_report(
    console: Console, runtime: Runtime, campaign_id: uuid.UUID, settings: Settings
) -> None:
    with runtime.session() as session:
        report = campaign_report(session, campaign_id, legal_bound(runtime.settings))
    console.print(_counts_table("Call outcomes", report.outcomes))
    console.print(_counts_table("Enrollment states", report.states))
    console.print(_counts_table("Closed, by reason", _close_reasons(runtime, campaign_id)))
    console.print(_counts_table("Held back by a rule (times the scan moved a call)", report.holds))
    console.print(_counts_table("Messages", report.whatsapp))
    console.print(
        _counts_table(
            "Calls per contact", {str(k): v for k, v in sorted(report.attempts_per_contact.items())}
        )
    )
    console.print(_counters_table(report))
    verdict = "[green]OK[/]" if report.calls_outside_window == 0 else "[red]VIOLATION[/]"
    console.print(
        f"calls placed outside the contact's window (rule packs' hours, days and holidays "
        f"included): {report.calls_outside_window} {verdict}"
    )
    over = report.calls_over_frequency_cap
    verdict = "[green]OK[/]" if over == 0 else "[red]VIOLATION[/]"
    console.print(f"calls placed over a rule pack's frequency cap: {over} {verdict}")


def _close_reasons(runtime: Runtime, campaign_id: uuid.UUID) -> dict[str, int]:
    """Why contacts closed (suppressed, no_common_window, answered, ...), most first."""
    with runtime.session() as session:
        rows = session.execute(
            select(Enrollment.close_reason, func.count())
            .where(Enrollment.campaign_id == campaign_id)
            .group_by(Enrollment.close_reason)
            .order_by(func.count().desc())
        ).all()
    return {str(reason or "open"): int(count) for reason, count in rows}


def _counts_table(title: str, counts: object) -> Table:
    table = Table("", "count", title=title)
    for key, value in dict(counts).items():  # type: ignore[call-overload]
        table.add_row(str(key), str(value))
    return table


def _counters_table(report: CampaignReport) -> Table:
    table = Table("counter (seed 003)", "value", title="Campaign counters")
    for key, value in report.counters.items():
        table.add_row(key, str(value))
    return table
