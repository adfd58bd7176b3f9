"""`make demo`: the embedded servers, the example campaign, its contact plan.

Re-runnable: the demo account's example campaign is replaced on every run.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.console import Console
from sqlalchemy import delete

from dialer import migrate
from dialer.bootstrap import bootstrap
from dialer.clock import utcnow
from dialer.customers_csv import parse_customers
from dialer.embedded import stop_services
from dialer.render import print_import_report, print_plan
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign, legal_bound
from dialer.services.imports import import_customers
from dialer.services.plan import build_contact_plan
from models import Campaign

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_ACCOUNT = "demo"


def run_demo(console: Console, *, keep_running: bool = False, examples: Path = EXAMPLES) -> int:
    runtime = bootstrap()
    try:
        console.rule("[bold]Campaign dialer demo")
        console.print(f"database: {runtime.database_url}\nredis:    {runtime.redis_url}")
        migrate.upgrade(runtime.database_url)
        spec = CampaignSpec.model_validate(yaml.safe_load((examples / "campaign.yaml").read_text()))
        legal = legal_bound(runtime.settings)
        with runtime.session() as session:
            account = get_or_create_account(session, DEMO_ACCOUNT)
            session.execute(
                delete(Campaign).where(
                    Campaign.account_id == account.id, Campaign.name == spec.name
                )
            )
            campaign = create_campaign(session, account, spec, legal)
            with (examples / "customers.csv").open(newline="") as stream:
                report = import_customers(session, campaign, parse_customers(stream), partial=True)
            print_import_report(
                console,
                report,
                Path(runtime.settings.home) / "customers.rejected.csv",
                committed=True,
            )
            plan = build_contact_plan(
                session, campaign, utcnow(runtime.settings), legal, keep_rows=25
            )
        print_plan(console, plan)
        return 0
    finally:
        runtime.dispose()
        if not keep_running:
            stop_services(runtime.settings)
