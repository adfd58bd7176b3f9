"""`dialer calls list`, through typer, against the test database.

The account named by --account ("default" unless told) owns the world of
test_api_calls; another account's calls must never show.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from dialer.cli.main import app
from dialer.services.accounts import get_or_create_account
from models import Account
from models.session import transaction
from tests.integration.test_api_calls import MINE, World, build_world


@pytest.fixture
def world(cli: CliRunner, clean_db: str) -> World:
    with transaction(clean_db) as session:
        default = get_or_create_account(session, "default").id
    return build_world(clean_db, default)


def run(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = cli.invoke(app, ["calls", "list", *args])
    return result.exit_code, result.output


def listed(cli: CliRunner, *args: str) -> dict[str, Any]:
    result = cli.invoke(app, ["calls", "list", "--json", *args])
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def ids_of(body: dict[str, Any]) -> set[str]:
    return {row["attempt"]["id"] for row in body["data"]}


def test_json_is_the_apis_shape_for_the_default_account(cli: CliRunner, world: World) -> None:
    body = listed(cli, "--limit", "200")
    assert set(body) == {"data", "meta", "query", "aggregations"}
    assert ids_of(body) == world.ids(*MINE)
    assert body["meta"]["total"] == 7
    row = body["data"][0]
    assert set(row) == {"attempt", "customer", "campaigns"}
    assert row["attempt"]["campaign"]["name"] in {"Spring", "Autumn"}


def test_filters_match_the_api(cli: CliRunner, world: World) -> None:
    body = listed(
        cli,
        "--status",
        "completed,pending",
        "--outcome",
        "null,no_answer",
        "--campaign",
        "Autumn",  # by name, like the other commands
        "--aggregations",
    )
    assert ids_of(body) == world.ids("a2", "a3")
    assert body["aggregations"]["quick_filters"]["status=pending"] == 1
    assert ids_of(listed(cli, "--q", "jones", "--sort-field", "scheduled_at")) == world.ids(
        "a2", "a3", "a6"
    )
    by_id = listed(cli, "--campaign", str(world.campaigns["autumn"]))
    assert by_id["meta"]["total"] == 4
    dated = listed(cli, "--date-from", "2026-11-20", "--date-to", "2026-11-22")
    assert ids_of(dated) == world.ids("a1", "a2", "a4")
    customer = listed(cli, "--customer-id", str(world.customers["c5"]))
    assert ids_of(customer) == world.ids("a7")


def test_paging_and_sorting(cli: CliRunner, world: World) -> None:
    body = listed(
        cli, "--limit", "2", "--offset", "1", "--sort-field", "scheduled_at", "--sort-dir", "asc"
    )
    assert [row["attempt"]["id"] for row in body["data"]] == [
        str(world.attempts["a7"]),
        str(world.attempts["a1"]),
    ]
    assert body["meta"] == {
        "total": 7,
        "limit": 2,
        "offset": 1,
        "sort": {"field": "scheduled_at", "direction": "asc"},
    }


def test_the_table_for_people(cli: CliRunner, world: World) -> None:
    code, out = run(cli, "--status", "completed", "--aggregations")
    assert code == 0, out
    assert "Ann Smith" in out
    assert "+12125550105" in out  # Eve
    assert "Zed" not in out  # the other account's customer
    assert "showing 1-3 of 3" in out
    assert "status=completed:3" in out


def test_another_account_sees_only_its_own(cli: CliRunner, world: World, clean_db: str) -> None:
    with transaction(clean_db) as session:
        name = session.get_one(Account, world.other_account_id).name
    body = listed(cli, "--account", name, "--limit", "200")
    assert ids_of(body) == world.ids("b1", "b2")
    assert ids_of(listed(cli, "--account", name, "--q", "jones")) == set()
    code, out = run(cli, "--account", name, "--campaign", "Autumn")
    assert code == 1
    assert "no campaign 'Autumn'" in out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--limit", "0"), "limit"),
        (("--limit", "201"), "limit"),
        (("--sort-field", "nope"), "sort_field"),
        (("--sort-dir", "up"), "sort_dir"),
        (("--outcome", "nil"), "outcome"),
        (("--date-from", "soon"), "date_from"),
    ],
)
def test_bad_options_fail_naming_the_parameter(
    cli: CliRunner, world: World, args: tuple[str, ...], named: str
) -> None:
    code, out = run(cli, *args)
    assert code == 1
    assert named in out
