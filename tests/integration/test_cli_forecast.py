"""`dialer plan CAMPAIGN --forecast` on a real PostgreSQL (issue 16): figures, JSON, no writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from typer.testing import CliRunner

from dialer.cli.main import app
from models import Base
from models.session import engine_for

CAMPAIGN_YAML = """
name: Forecast campaign
agent: {name: Forecast agent, provider_agent_id: agt_fc, phone_numbers: ["+12125550100"]}
timezone: Europe/Rome
call_opening_message: "Hi {{name}}"
call_working_hours: {start: "09:00", end: "19:00", weekdays: [0, 1, 2, 3, 4]}
call_attempt_delays: [60, 120]
concurrency: 2
"""
PEOPLE = (
    "customer_id,name,phone,timezone\n"
    "c1,Ann,+390612345671,Europe/Rome\n"
    "c2,Bob,,Europe/Rome\n"
    "c3,Cy,+390612345673,Europe/Rome\n"
    "c4,Di,+390612345674,Europe/Rome\n"
)
# Monday 23 November 2026, 07:00 in Rome: two hours before the window opens.
AT = "2026-11-23T06:00:00Z"


def run(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.output


def figures_of(cli: CliRunner, *args: str) -> dict[str, Any]:
    """The --json figures (alone on stdout: the logs go to stderr)."""
    result = cli.invoke(app, ["plan", *args, "--forecast", "--json"])
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


@pytest.fixture
def campaign(cli: CliRunner, tmp_path: Path) -> str:
    spec = tmp_path / "c.yaml"
    spec.write_text(CAMPAIGN_YAML)
    assert run(cli, "campaign", "create", str(spec))[0] == 0
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)
    code, out = run(cli, "customers", "import", "Forecast campaign", str(people))
    assert code == 0, out
    return "Forecast campaign"


def row_counts(url: str) -> dict[str, int]:
    with engine_for(url).connect() as conn:
        return {
            t.name: conn.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def test_forecast_json_has_the_figures_and_writes_nothing(
    cli: CliRunner, campaign: str, clean_db: str, redis_client: redis.Redis
) -> None:
    before, keys_before = row_counts(clean_db), redis_client.dbsize()
    figures = figures_of(cli, campaign, "--at", AT)
    assert figures["campaign"] == campaign
    assert figures["contacts"] == 4
    assert figures["excluded"] == {"missing_contact": 1}
    assert figures["contacts_called"] == 3
    assert 1 <= figures["calls_per_contact_mean"] <= figures["calls_per_contact_max"] <= 3
    assert figures["callable_today_share"] == 0.75  # all three phones, first call today
    assert figures["deferrals"]["outside_window"] >= 3  # 07:00: each waits for 09:00
    assert figures["deferrals"]["concurrency"] >= 1  # three contacts, two lines
    assert figures["completed_at"] is not None
    assert figures["completed_at"] >= "2026-11-23T08:00:00+00:00"
    assert figures["cost_millicents"] >= 0
    assert sum(figures["outcomes"].values()) == figures["calls"]
    assert row_counts(clean_db) == before  # no attempt, no account, no counter
    assert redis_client.dbsize() == keys_before  # nothing enqueued
    again = figures_of(cli, campaign, "--at", AT)
    assert again == figures  # the default seed is fixed: same output


def test_forecast_table_prints_the_same_figures(cli: CliRunner, campaign: str) -> None:
    code, out = run(cli, "plan", campaign, "--forecast", "--at", AT, "--seed", "3")
    assert code == 0, out
    figures = figures_of(cli, campaign, "--at", AT, "--seed", "3")
    assert "expected completion" in out
    assert f"{figures['callable_today_share']:.1%}" in out  # 75.0%
    assert f"max {figures['calls_per_contact_max']}" in out
    assert f"{figures['cost_millicents']} milli-cents" in out
    assert "missing_contact" in out
    assert "outside_window" in out
    assert "nothing was written" in out


def test_forecast_refuses_a_horizon_beyond_sixty_days(cli: CliRunner, campaign: str) -> None:
    code, out = run(cli, "plan", campaign, "--forecast", "--horizon-days", "90")
    assert code == 1
    assert "horizon_days" in out
    assert "1..60" in out


def test_forecast_options_need_forecast(cli: CliRunner, campaign: str) -> None:
    code, out = run(cli, "plan", campaign, "--json")
    assert code == 1
    assert "--forecast" in out
