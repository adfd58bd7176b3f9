"""An agent's call log, GET /api/v1/console/agents/{agentId}/calls (seed 001).

Uses the two-account world of test_api_calls: agent "Front" runs Spring (attempts
a1..a5), agent "Back" runs Autumn (a6, a7), and account B has its own "Front".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.api_support import Api
from tests.integration.test_api_calls import (
    DAY,
    NOW,
    World,
    add_attempt,
    assert_refused,
    build_world,
)

FRONT = ("a1", "a2", "a3", "a4", "a5")


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api.database_url)


@pytest.fixture
def http(api: Api, world: World) -> Iterator[httpx.Client]:
    with api.client(api.key(world.account_id)) as client:
        yield client


def log_of(http: httpx.Client, agent_id: uuid.UUID | str, **params: Any) -> dict[str, Any]:
    answer = http.get(f"/api/v1/console/agents/{agent_id}/calls", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ids_of(body: dict[str, Any]) -> list[str]:
    return [entry["id"] for entry in body["data"]]


def labels(world: World, *names: str) -> list[str]:
    return [str(world.attempts[name]) for name in names]


def test_the_log_lists_the_attempts_of_the_agents_campaigns(
    http: httpx.Client, world: World
) -> None:
    body = log_of(http, world.agents["front"])
    assert body["message"] == "Success"
    assert body["meta"] == {
        "total_count": 5,
        "page_count": 1,
        "current_page": 1,
        "limit": 10,
        "has_next_page": False,
        "has_previous_page": False,
    }
    # Newest first by default (created_on descending).
    assert ids_of(body) == labels(world, "a3", "a5", "a4", "a2", "a1")
    assert set(ids_of(log_of(http, world.agents["back"]))) == set(labels(world, "a6", "a7"))


def test_a_record_maps_the_attempt_to_seed_001s_fields(http: httpx.Client, world: World) -> None:
    entries = {e["id"]: e for e in log_of(http, world.agents["front"])["data"]}
    answered = entries[str(world.attempts["a1"])]
    assert set(answered) == {
        "id",
        "source",
        "destination",
        "status",
        "direction",
        "created_on",
        "duration_seconds",
        "is_test_call",
        "error_reason",
        "end_reason",
        "ringing_at",
        "ended_at",
    }
    assert answered["source"] == "+12125550199"
    assert answered["destination"] == "+12125550101"
    assert answered["status"] == "completed"
    assert answered["direction"] == "outbound"
    assert answered["duration_seconds"] == 42.5
    assert answered["is_test_call"] is False
    assert answered["end_reason"] == "customer_hangup"
    assert datetime.fromisoformat(answered["ended_at"]) == NOW - 3 * DAY
    assert datetime.fromisoformat(answered["ringing_at"]) == NOW - 3 * DAY - timedelta(seconds=50)
    assert datetime.fromisoformat(answered["created_on"]) == NOW - 3 * DAY - timedelta(minutes=5)
    failed = entries[str(world.attempts["a4"])]
    assert failed["error_reason"] == "provider refused: invalid number"
    assert failed["status"] == "failed"
    pending = entries[str(world.attempts["a3"])]
    # Not dialed yet: no caller ID, and the number it will dial is the customer's.
    assert (pending["source"], pending["destination"]) == (None, "+12125550102")
    assert pending["status"] == "pending"


def test_status_is_the_telephony_status_while_it_describes_the_call(
    api: Api, http: httpx.Client, world: World
) -> None:
    # Our side failed this one while the provider last said "ringing": ours wins.
    stuck = add_attempt(
        api.database_url,
        world.campaigns["spring"],
        world.customers["c1"],
        attempt_no=2,
        status="failed",
        outcome="failed",
        provider_status="ringing",
    )
    statuses = {e["id"]: e["status"] for e in log_of(http, world.agents["front"])["data"]}
    assert statuses[str(world.attempts["a5"])] == "ringing"  # in progress at the provider
    assert statuses[str(world.attempts["a2"])] == "no_answer"  # the provider's final word
    assert statuses[str(stuck)] == "failed"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("ringing", ("a5",)),
        ("pending", ("a3",)),
        ("No_Answer", ("a2",)),
        ("completed", ("a1",)),
        ("in_progress", ()),  # a5 is shown as ringing
    ],
)
def test_status_filter(
    http: httpx.Client, world: World, status: str, expected: tuple[str, ...]
) -> None:
    body = log_of(http, world.agents["front"], status=status)
    assert set(ids_of(body)) == set(labels(world, *expected))
    assert body["meta"]["total_count"] == len(expected)
    assert all(e["status"] == status.lower() for e in body["data"])


def test_no_call_is_a_test_call(http: httpx.Client, world: World) -> None:
    tests = log_of(http, world.agents["front"], is_test_call="true")
    assert (tests["data"], tests["meta"]["total_count"]) == ([], 0)
    live = log_of(http, world.agents["front"], is_test_call="false")
    assert live["meta"]["total_count"] == 5


def test_search(http: httpx.Client, world: World) -> None:
    front = world.agents["front"]
    assert ids_of(log_of(http, front, search="5550103")) == labels(world, "a4")  # destination
    assert ids_of(log_of(http, front, search="CONV-CCC")) == labels(world, "a5")  # provider id
    a1 = str(world.attempts["a1"])
    assert ids_of(log_of(http, front, search=a1[:13])) == [a1]  # our id
    from_front = log_of(http, front, search="+12125550199")  # source
    assert set(ids_of(from_front)) == set(labels(world, "a1", "a5"))
    assert log_of(http, front, search="Zed")["data"] == []


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("duration_seconds", ("a2", "a5", "a1")),
        ("-duration_seconds", ("a1", "a5", "a2")),
        ("created_on", ("a1", "a2", "a4", "a5", "a3")),
        ("-created_at", ("a3", "a5", "a4", "a2", "a1")),
    ],
)
def test_sort_with_a_leading_minus_for_descending(
    http: httpx.Client, world: World, sort: str, expected: tuple[str, ...]
) -> None:
    order = ids_of(log_of(http, world.agents["front"], sort=sort))
    assert order[: len(expected)] == labels(world, *expected)


def test_pages_are_one_based(http: httpx.Client, world: World) -> None:
    front = world.agents["front"]
    pages = [log_of(http, front, limit=2, page=page) for page in (1, 2, 3, 4)]
    assert [len(p["data"]) for p in pages] == [2, 2, 1, 0]
    assert [p["meta"]["has_next_page"] for p in pages] == [True, True, False, False]
    assert [p["meta"]["has_previous_page"] for p in pages] == [False, True, True, True]
    assert {p["meta"]["page_count"] for p in pages} == {3}
    assert {p["meta"]["total_count"] for p in pages} == {5}
    assert [p["meta"]["current_page"] for p in pages] == [1, 2, 3, 4]
    walked = [entry for p in pages for entry in ids_of(p)]
    assert walked == labels(world, "a3", "a5", "a4", "a2", "a1")


@pytest.mark.parametrize(
    ("params", "field_name"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"page": 0}, "page"),
        ({"page": 10**30}, "page"),  # its offset would not fit PostgreSQL's OFFSET
        ({"sort": "-cost"}, "sort"),
        ({"status": "done"}, "status"),
        ({"is_test_call": "maybe"}, "is_test_call"),
        ({"search": "\x00"}, "search"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    http: httpx.Client, world: World, params: dict[str, Any], field_name: str
) -> None:
    answer = http.get(f"/api/v1/console/agents/{world.agents['front']}/calls", params=params)
    assert_refused(answer, 422, "validation_error", field_name)


def test_a_hundred_is_the_largest_page(http: httpx.Client, world: World) -> None:
    assert log_of(http, world.agents["front"], limit=100)["meta"]["limit"] == 100


@pytest.mark.parametrize("agent", ["other", "unknown", "not-a-uuid"])
def test_another_accounts_or_an_unknown_agent_is_not_found(
    http: httpx.Client, world: World, agent: str
) -> None:
    agent_id = world.agents.get(agent) or (uuid.uuid4() if agent == "unknown" else agent)
    answer = http.get(f"/api/v1/console/agents/{agent_id}/calls")
    assert_refused(answer, 404, "not_found")
    assert answer.json()["message"] == "Agent not found"
    assert answer.json()["error"] == "Not Found"


def test_the_other_account_sees_only_its_own_agents_log(api: Api, world: World) -> None:
    with api.client(api.key(world.other_account_id)) as theirs:
        body = log_of(theirs, world.agents["other"])
        assert set(ids_of(body)) == set(labels(world, "b1", "b2"))
        mine = theirs.get(f"/api/v1/console/agents/{world.agents['front']}/calls")
    assert_refused(mine, 404, "not_found")


def test_the_log_needs_calls_read(api: Api, world: World) -> None:
    path = f"/api/v1/console/agents/{world.agents['front']}/calls"
    with api.client(api.key(world.account_id, ["calls:write", "campaigns:read"])) as writer:
        answer = writer.get(path)
    assert_refused(answer, 403, "insufficient_scope")
    assert answer.json()["message"] == "This API key is missing the required scope: calls:read."
    with api.client() as anonymous:
        assert_refused(anonymous.get(path), 401, "api_key_invalid")
    with api.client() as header:  # seed 001: the key may come in X-Api-Key too
        key = api.key(world.account_id, ["calls:read"])
        assert header.get(path, headers={"X-API-Key": key}).status_code == 200


def test_the_path_is_documented_as_in_the_seed(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/console/agents/{agentId}/calls"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"agentId", "page", "limit", "search", "sort", "is_test_call", "status"} <= names
