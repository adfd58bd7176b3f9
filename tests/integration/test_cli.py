"""The `dialer` commands a user types, through typer, against the test database."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dialer.cli.main import app

CAMPAIGN_YAML = """
name: Cli campaign
agent: {name: Cli agent, provider_agent_id: agt_cli, phone_numbers: ["+12125550100"]}
timezone: Europe/Rome
call_opening_message: "Hi {{name}}"
"""


def run(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.output


def test_create_import_plan(cli: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(CAMPAIGN_YAML)
    code, out = run(cli, "campaign", "create", str(spec))
    assert code == 0, out
    assert "created campaign" in out
    csv = tmp_path / "people.csv"
    csv.write_text("customer_id,name,phone\nc1,Ann,+12125550123\nc2,Bob,\nc3,Cy,+81312345678\n")
    code, out = run(cli, "customers", "import", "Cli campaign", str(csv))
    assert code == 0, out
    assert "3 enrolled" in out
    code, out = run(cli, "plan", "Cli campaign", "--at", "2026-11-23T15:00:00Z")
    assert code == 0, out
    assert "callable now" in out
    assert "skipped: missing_contact" in out


def test_invalid_campaign_file_names_the_field(cli: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        CAMPAIGN_YAML + "concurrency: 5000\ncall_working_hours: {start: '22:00', end: '23:00'}\n"
    )
    code, out = run(cli, "campaign", "create", str(spec))
    assert code == 1
    assert "concurrency" in out


def test_bad_rows_import_nothing_and_are_written_out(cli: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(CAMPAIGN_YAML)
    run(cli, "campaign", "create", str(spec))
    csv = tmp_path / "people.csv"
    csv.write_text("customer_id,name,phone,email\nc1,Ann,+12125550123,\nc2,Bob,+12125550124,nope\n")
    code, out = run(cli, "customers", "import", "Cli campaign", str(csv))
    assert code == 1
    assert "nothing was imported" in out
    rejects = tmp_path / "people.rejected.csv"
    assert "not an email address" in rejects.read_text()
    code, out = run(cli, "plan", "Cli campaign")
    assert "│ total" in out
    assert "│ 0 " in out.split("total")[-1]


def test_lifecycle_commands_follow_the_seed_rules(cli: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(CAMPAIGN_YAML)
    run(cli, "campaign", "create", str(spec))
    assert "is running" in run(cli, "campaign", "start", "Cli campaign")[1]
    assert "is running" in run(cli, "campaign", "start", "Cli campaign")[1]  # idempotent
    assert "is done" in run(cli, "campaign", "complete", "Cli campaign")[1]
    code, out = run(cli, "campaign", "start", "Cli campaign")
    assert code == 1
    assert "cannot be restarted" in out
    code, out = run(cli, "campaign", "resume", "Cli campaign", "--segment", "not_contacted")
    assert code == 0, out
    assert '"segment": "not_contacted"' in out
