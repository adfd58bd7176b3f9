"""Control API, campaigns: create, read, edit, list with counters, and the lifecycle."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from dialer.services.outbox import CAMPAIGN_STARTED
from models import Campaign, OutboxEvent
from models.session import engine_for, transaction
from tests.integration.api_support import AccountClient, Api
from tests.integration.pipeline_support import BASE_SPEC, rome_phone
from tests.integration.results_support import (
    EXPECTED_COUNTERS,
    RESULT_CUSTOMERS,
    record_results,
)

SEED_002_REQUIRED = {"name", "agent_id", "id", "status", "created_at", "updated_at"}
SEED_003_COUNTERS = {
    "total_contacts",
    "completed_contacts",
    "successful_contacts",
    "failed_contacts",
    "voicemail_contacts",
    "no_answer_contacts",
    "total_cost_usd",
    "average_duration_seconds",
}
ZERO_COUNTERS = dict.fromkeys(EXPECTED_COUNTERS, 0) | {"total_cost_usd": 0.0}


def spec(name: str = "Spring", **changes: Any) -> dict[str, Any]:
    return {**BASE_SPEC, "name": name, **changes}


def create(client: AccountClient, name: str = "Spring", **changes: Any) -> dict[str, Any]:
    answer = client.http.post("/campaigns", json=spec(name, **changes))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def enroll(client: AccountClient, campaign_id: str, customers: list[dict[str, Any]]) -> None:
    answer = client.http.post(f"/campaigns/{campaign_id}/customers", json=customers)
    assert answer.status_code == 200, answer.text


def post(client: AccountClient, path: str, **kwargs: Any) -> httpx.Response:
    return client.http.post(path, **kwargs)


def detail_fields(answer: httpx.Response) -> list[str]:
    return [d["field"] for d in answer.json()["details"]]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def without_ids(answer: httpx.Response, object_id: str) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    return body | {"message": body["message"].replace(object_id, "<id>"), "request_id": ""}


# --------------------------------------------------------------------------- create and read


def test_create_answers_seed_002_campaign_out_with_our_settings(api: Api) -> None:
    client = api.as_new_account()
    created = create(client, call_working_hours={"start": "10:00", "end": "18:30"})
    assert created.keys() >= SEED_002_REQUIRED
    assert created["status"] == "draft"
    assert created["call_working_hours"] == {
        "start": "10:00:00",
        "end": "18:30:00",
        "weekdays": [0, 1, 2, 3, 4],
    }
    assert created["goal_logic"] == "all"
    assert created["whatsapp_after_attempts"] == 2
    assert created["call_attempt_delays"] == [60, 240]
    assert created["timezone"] == "Europe/Rome"
    assert created["concurrency"] == 5
    assert created["phone_rotation_strategy"] == "round_robin"
    assert len(created["phone_number_ids"]) == 2
    assert created["phone_number_id"] == created["phone_number_ids"][0]
    assert created["whatsapp_channel_id"] is not None
    assert created["schedule_type"] == "immediate"

    fetched = client.http.get(f"/campaigns/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created | ZERO_COUNTERS


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"concurrency": 5000}, "concurrency"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "America"}, "timezone"),  # a directory of the zone files
        ({"timezone": "x" * 300}, "timezone"),
        ({"call_working_hours": {"start": "22:00", "end": "23:00"}}, "call_working_hours"),
        ({"call_opening_message": "Hi {{nickname}}"}, "call_opening_message"),
        ({"agent_id": str(uuid.uuid4())}, "body"),  # both agent and agent_id
        ({"email_subject": "Hi\r\nBcc: all@example.org"}, "email_subject"),  # header injection
        ({"email_subject": "Hi {{nickname}}"}, "email_subject"),
        ({"email_subject": "x" * 201}, "email_subject"),
        ({"email_goal_counts": "opened"}, "email_goal_counts"),
    ],
)
def test_create_refuses_what_can_never_work_naming_the_field(
    api: Api, changes: dict[str, Any], field: str
) -> None:
    client = api.as_new_account()
    answer = client.http.post("/campaigns", json=spec(**changes))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "validation_error"
    assert field in detail_fields(answer)


@pytest.mark.parametrize(
    ("agent", "field"),
    [
        ({"provider": "nexmo"}, "agent.provider"),
        ({"fallback_provider": "nexmo"}, "agent.fallback_provider"),
        ({"provider": "vapi", "fallback_provider": "vapi"}, "agent.fallback_provider"),
    ],
)
def test_an_agent_naming_an_unknown_provider_is_refused_naming_the_field(
    api: Api, agent: dict[str, Any], field: str
) -> None:
    client = api.as_new_account()
    answer = client.http.post("/campaigns", json=spec(agent={**BASE_SPEC["agent"], **agent}))
    assert answer.status_code == 422, answer.text
    assert field in detail_fields(answer)


def test_email_goal_counts_and_the_subject_are_kept_and_editable(api: Api) -> None:
    client = api.as_new_account()
    created = create(client)
    assert (created["email_goal_counts"], created["email_subject"]) == ("delivered", None)
    path = f"/campaigns/{created['id']}"
    answer = client.http.patch(
        path, json={"email_goal_counts": "accepted", "email_subject": "{{name}}, hello"}
    )
    assert answer.status_code == 200, answer.text
    assert client.http.get(path).json()["email_subject"] == "{{name}}, hello"
    assert client.http.get(path).json()["email_goal_counts"] == "accepted"
    refused = client.http.patch(path, json={"email_subject": "a\nb"})
    assert refused.status_code == 422
    assert detail_fields(refused) == ["email_subject"]


def test_retry_by_outcome_is_kept_editable_and_bounded(api: Api) -> None:
    client = api.as_new_account()
    created = create(client)
    assert created["retry_by_outcome"]["retry_voicemail"] is True  # today's plan
    assert created["retry_by_outcome"]["stop_outcomes"] == ["opt_out", "wrong_number"]
    path = f"/campaigns/{created['id']}"
    tuned = {"busy": {"delays_minutes": [5, 15], "max_tries": 2}, "retry_voicemail": False}
    answer = client.http.patch(path, json={"retry_by_outcome": tuned})
    assert answer.status_code == 200, answer.text
    stored = client.http.get(path).json()["retry_by_outcome"]
    assert stored["busy"] == {"delays_minutes": [5, 15], "max_tries": 2}
    assert (stored["retry_voicemail"], stored["no_answer"]) == (False, None)
    for bad, field in [
        ({"busy": {"max_tries": 0}}, "retry_by_outcome.busy.max_tries"),
        ({"answered": {"max_tries": 1}}, "retry_by_outcome.answered"),
        ({"stop_outcomes": ["wrong_number"]}, "retry_by_outcome.stop_outcomes"),
    ]:
        refused = client.http.patch(path, json={"retry_by_outcome": bad})
        assert refused.status_code == 422, refused.text
        assert field in detail_fields(refused)


def test_the_voicemail_policy_is_kept_editable_and_validated(api: Api) -> None:
    client = api.as_new_account()
    created = create(client)
    assert (created["voicemail_action"], created["voicemail_message"]) == (None, None)
    path = f"/campaigns/{created['id']}"
    policy = {"voicemail_action": "leave_message", "voicemail_message": "Hi {{name}}"}
    answer = client.http.patch(path, json=policy)
    assert answer.status_code == 200, answer.text
    got = client.http.get(path).json()
    assert (got["voicemail_action"], got["voicemail_message"]) == ("leave_message", "Hi {{name}}")
    for bad, field in [
        ({"voicemail_message": "Hi {{nickname}}"}, "voicemail_message"),
        ({"voicemail_message": "x" * 501}, "voicemail_message"),
        ({"voicemail_action": "sing"}, "voicemail_action"),
    ]:
        refused = client.http.patch(path, json=bad)
        assert refused.status_code == 422, refused.text
        assert field in detail_fields(refused)
    no_message = client.http.post(
        "/campaigns", json=spec("No message", voicemail_action="leave_message")
    )
    assert no_message.status_code == 422, no_message.text


def test_a_name_is_used_once_per_account(api: Api) -> None:
    first, second = api.as_new_account(), api.as_new_account()
    create(first, "Same")
    answer = first.http.post("/campaigns", json=spec("Same"))
    assert answer.status_code == 409
    assert answer.json()["code"] == "conflict"
    create(second, "Same")  # another account's names do not collide


def test_another_accounts_agent_is_unknown(api: Api) -> None:
    owner, other = api.as_new_account(), api.as_new_account()
    agent_id = create(owner)["agent_id"]
    body = {**spec(), "agent": None, "agent_id": agent_id}
    answer = other.http.post("/campaigns", json=body)
    assert answer.status_code == 422
    assert detail_fields(answer) == ["agent_id"]


# --------------------------------------------------------------------------- edit


def test_a_draft_changes_its_settings_and_they_are_validated_like_a_new_one(api: Api) -> None:
    client = api.as_new_account()
    campaign = create(client)
    path = f"/campaigns/{campaign['id']}"
    answer = client.http.patch(
        path,
        json={
            "concurrency": 7,
            "max_calls_per_day": 300,
            "call_working_hours": {"start": "10:00", "end": "12:00", "weekdays": [5]},
            "call_opening_message": "Hi {{name}}, about your {{plan}} plan",
            "customer_fields": ["plan"],
            "phone_number_ids": list(reversed(campaign["phone_number_ids"])),
        },
    )
    assert answer.status_code == 200, answer.text
    edited = answer.json()
    assert edited["concurrency"] == 7
    assert edited["max_calls_per_day"] == 300
    assert edited["call_working_hours"] == {"start": "10:00:00", "end": "12:00:00", "weekdays": [5]}
    assert edited["phone_number_ids"] == list(reversed(campaign["phone_number_ids"]))
    assert edited["phone_number_id"] == edited["phone_number_ids"][0]
    assert edited["timezone"] == campaign["timezone"]  # left out: kept
    assert at(edited["updated_at"]) > at(campaign["updated_at"])
    # A later edit keeps the placeholders the stored template already uses valid.
    assert client.http.patch(path, json={"goal": "book a demo"}).status_code == 200
    assert client.http.get(path).json()["call_opening_message"].endswith("{{plan}} plan")


@pytest.mark.parametrize(
    ("patch", "status", "field"),
    [
        ({"call_opening_message": "Hi {{nickname}}"}, 422, "call_opening_message"),
        ({"call_working_hours": {"start": "05:00", "end": "07:00"}}, 422, "call_working_hours"),
        ({"concurrency": 0}, 422, "concurrency"),
        ({"timezone": "America"}, 422, "timezone"),
        ({"timezone": "x" * 300}, 422, "timezone"),
        ({"name": "Spring\x00"}, 422, "name"),  # PostgreSQL text holds no NUL
        ({"variables": {"offer": "\x00"}}, 422, "variables"),
        ({"concurrency": None}, 422, "concurrency"),
        ({"agent_id": str(uuid.uuid4())}, 422, "agent_id"),
        ({"status": "running"}, 422, "status"),
        ({"phone_number_ids": [str(uuid.uuid4())]}, 422, "phone_number_ids.0"),
        ({"phone_number_ids": []}, 422, "phone_number_ids"),
        ({"schedule_type": "scheduled"}, 422, "input"),  # needs scheduled_at
    ],
)
def test_an_edit_that_create_would_refuse_is_refused_and_changes_nothing(
    api: Api, patch: dict[str, Any], status: int, field: str
) -> None:
    client = api.as_new_account()
    campaign = create(client)
    answer = client.http.patch(f"/campaigns/{campaign['id']}", json=patch)
    assert answer.status_code == status, answer.text
    assert field in answer.json()["details"][0]["field"].split(",")
    fetched = client.http.get(f"/campaigns/{campaign['id']}").json()
    assert {k: fetched[k] for k in campaign} == campaign


def test_renaming_onto_another_campaigns_name_is_a_conflict(api: Api) -> None:
    client = api.as_new_account()
    create(client, "Taken")
    campaign = create(client, "Mine")
    answer = client.http.patch(f"/campaigns/{campaign['id']}", json={"name": "Taken"})
    assert answer.status_code == 409
    same = client.http.patch(f"/campaigns/{campaign['id']}", json={"name": "Mine"})
    assert same.status_code == 200


def test_what_may_change_depends_on_the_status(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = create(client)["id"]
    path = f"/campaigns/{campaign_id}"
    post(client, f"{path}/start")
    throttled = client.http.patch(path, json={"concurrency": 2, "max_calls_per_day": 50})
    assert throttled.status_code == 200
    assert throttled.json()["concurrency"] == 2
    refused = client.http.patch(path, json={"timezone": "UTC"})
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_state"
    assert "pause" in refused.json()["message"]
    post(client, f"{path}/pause")
    assert client.http.patch(path, json={"timezone": "UTC"}).json()["timezone"] == "UTC"
    post(client, f"{path}/complete")
    done = client.http.patch(path, json={"concurrency": 3})
    assert done.status_code == 400
    assert done.json()["code"] == "invalid_state"
    assert client.http.get(path).json()["concurrency"] == 2


# --------------------------------------------------------------------------- list and counters


def test_the_list_pages_with_limit_and_offset(api: Api) -> None:
    client = api.as_new_account()
    names = [create(client, f"C{n}")["name"] for n in range(3)]
    first = client.http.get("/campaigns", params={"limit": 2}).json()
    assert [c["name"] for c in first["data"]] == names[::-1][:2]  # newest first
    assert first["pagination"] == {"total": 3, "limit": 2, "offset": 0, "has_more": True}
    assert first["meta"]["request_id"]
    assert first["meta"]["ts"]
    rest = client.http.get("/campaigns", params={"limit": 2, "offset": 2}).json()
    assert [c["name"] for c in rest["data"]] == [names[0]]
    assert rest["pagination"]["has_more"] is False
    past = client.http.get("/campaigns", params={"offset": 10}).json()
    assert past["data"] == []
    assert past["pagination"] == {"total": 3, "limit": 50, "offset": 10, "has_more": False}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 10**10}, "offset"),
    ],
)
def test_limits_outside_the_bounds_are_refused_by_name(
    api: Api, params: dict[str, int], field: str
) -> None:
    client = api.as_new_account()
    answer = client.http.get("/campaigns", params=params)
    assert answer.status_code == 422
    assert answer.json()["code"] == "validation_error"
    assert detail_fields(answer) == [field]


def _listed(client: AccountClient, **params: str) -> dict[str, tuple[str, str]]:
    answer = client.http.get("/campaigns", params=params)
    assert answer.status_code == 200, answer.text
    return {c["name"]: (c["status"], c["lifecycle_status"]) for c in answer.json()["data"]}


def test_the_list_speaks_seed_003s_status_words_in_body_and_filter(api: Api) -> None:
    client = api.as_new_account()
    create(client, "Draft")
    running = create(client, "Running")
    post(client, f"/campaigns/{running['id']}/start")
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    scheduled = create(client, "Scheduled", schedule_type="scheduled", scheduled_at=later)
    post(client, f"/campaigns/{scheduled['id']}/start")
    paused = create(client, "Paused")
    post(client, f"/campaigns/{paused['id']}/start")
    post(client, f"/campaigns/{paused['id']}/pause")
    done = create(client, "Done")
    post(client, f"/campaigns/{done['id']}/complete")

    assert _listed(client) == {
        "Draft": ("draft", "draft"),
        "Running": ("active", "running"),
        "Scheduled": ("scheduled", "running"),
        "Paused": ("paused", "paused"),
        "Done": ("completed", "done"),
    }
    assert list(_listed(client, status="active")) == ["Running"]
    assert list(_listed(client, status="scheduled")) == ["Scheduled"]
    assert list(_listed(client, status="completed")) == ["Done"]
    assert _listed(client, status="failed") == _listed(client, status="cancelled") == {}
    # The project's own (seed 002) words still filter: running is active or scheduled.
    assert sorted(_listed(client, status="running")) == ["Running", "Scheduled"]
    assert list(_listed(client, status="done")) == ["Done"]
    counted = client.http.get("/campaigns", params={"status": "active"}).json()
    assert counted["pagination"]["total"] == 1
    bad = client.http.get("/campaigns", params={"status": "finished"})
    assert bad.status_code == 422
    assert detail_fields(bad) == ["status"]


@pytest.mark.parametrize("action", ["start", "pause", "complete", "resume"])
def test_a_lifecycle_route_refuses_unknown_query_parameters(api: Api, action: str) -> None:
    client = api.as_new_account()
    campaign = create(client)
    answer = client.http.post(f"/campaigns/{campaign['id']}/{action}", params={"force": "1"})
    assert answer.status_code == 422, answer.text
    assert detail_fields(answer) == ["force"]
    assert answer.json()["detail"][0]["loc"] == ["query", "force"]
    assert client.http.get(f"/campaigns/{campaign['id']}").json()["status"] == "draft"


def test_counters_follow_the_recorded_attempts(api: Api) -> None:
    client = api.as_new_account()
    results = create(client, "Results")
    quiet = create(client, "Quiet")
    enroll(client, results["id"], RESULT_CUSTOMERS)
    enroll(client, quiet["id"], RESULT_CUSTOMERS[:2])
    record_results(api.database_url, uuid.UUID(results["id"]))

    fetched = client.http.get(f"/campaigns/{results['id']}").json()
    assert fetched.keys() >= SEED_003_COUNTERS
    assert {k: fetched[k] for k in EXPECTED_COUNTERS} == EXPECTED_COUNTERS
    listed = {c["name"]: c for c in client.http.get("/campaigns").json()["data"]}
    assert {k: listed["Results"][k] for k in EXPECTED_COUNTERS} == EXPECTED_COUNTERS
    assert {k: listed["Quiet"][k] for k in EXPECTED_COUNTERS} == ZERO_COUNTERS | {
        "total_contacts": 2
    }


@contextmanager
def counting_statements(url: str) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = engine_for(url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_page_costs_the_same_queries_whatever_its_size(api: Api) -> None:
    client = api.as_new_account()
    for n in range(6):
        campaign = create(client, f"C{n}")
        enroll(client, campaign["id"], RESULT_CUSTOMERS[:2])
    with counting_statements(api.database_url) as small:
        assert len(client.http.get("/campaigns", params={"limit": 1}).json()["data"]) == 1
    with counting_statements(api.database_url) as large:
        assert len(client.http.get("/campaigns", params={"limit": 6}).json()["data"]) == 6
    assert len(large) == len(small)


# --------------------------------------------------------------------------- lifecycle


def test_start_follows_the_seed_rules(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = create(client)["id"]
    path = f"/campaigns/{campaign_id}"
    started = post(client, f"{path}/start")
    assert started.status_code == 200
    assert started.json()["status"] == "running"
    assert started.json()["started_at"] is not None
    again = post(client, f"{path}/start")  # running -> running: a no-op
    assert again.status_code == 200
    assert again.json()["status"] == "running"
    assert again.json()["started_at"] == started.json()["started_at"]
    with transaction(api.database_url) as session:
        topics = session.scalars(select(OutboxEvent.topic)).all()
    assert topics == [CAMPAIGN_STARTED]  # one event: the no-op recorded nothing
    assert post(client, f"{path}/pause").json()["status"] == "paused"
    assert post(client, f"{path}/pause").json()["status"] == "paused"
    assert post(client, f"{path}/start").json()["status"] == "running"
    completed = post(client, f"{path}/complete")
    assert completed.json()["status"] == "done"
    assert completed.json()["completed_at"] is not None
    refused = post(client, f"{path}/start")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_state"
    assert "cannot be restarted" in refused.json()["message"]
    assert post(client, f"{path}/pause").status_code == 400
    assert post(client, f"{path}/complete").json()["status"] == "done"


def test_a_draft_cannot_be_paused_or_resumed(api: Api) -> None:
    client = api.as_new_account()
    path = f"/campaigns/{create(client)['id']}"
    for action in ("pause", "resume"):
        answer = post(client, f"{path}/{action}", json={"segment": "not_answered"})
        assert answer.status_code == 400, action
        assert answer.json()["code"] == "invalid_state"
    assert client.http.get(path).json()["status"] == "draft"


def test_resume_answers_seed_002_counts(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = create(client)["id"]
    path = f"/campaigns/{campaign_id}"
    customers = [{"customer_id": f"p{n}", "phone": rome_phone(n)} for n in range(3)]
    enroll(client, campaign_id, [*customers, {"customer_id": "no-phone", "name": "Nobody"}])
    post(client, f"{path}/start")
    post(client, f"{path}/complete")  # nobody was called: the three end not_answered

    resumed = post(client, f"{path}/resume", json={"segment": "not_contacted"})
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert body["campaign"]["status"] == "running"
    assert body["campaign"]["completed_at"] is None
    assert {k: v for k, v in body.items() if k != "campaign"} == {
        "segment": "not_contacted",
        "selected_targets": 4,
        "scheduled_calls": 3,
        "queued_whatsapp": 0,
        "skipped_existing_pending": 0,
        "skipped_missing_contact": 1,
    }
    again = post(client, f"{path}/resume", json={"segment": "not_contacted"}).json()
    assert again["scheduled_calls"] == 0
    assert again["skipped_existing_pending"] == 3
    default = post(client, f"{path}/resume")  # no body: segment not_answered
    assert default.status_code == 200
    assert default.json()["segment"] == "not_answered"
    unknown = post(client, f"{path}/resume", json={"segment": "everyone"})
    assert unknown.status_code == 422
    assert detail_fields(unknown) == ["segment"]


# --------------------------------------------------------------------------- isolation and keys

CAMPAIGN_ROUTES = [
    ("GET", "/campaigns/{id}", None),
    ("PATCH", "/campaigns/{id}", {"concurrency": 1}),
    ("POST", "/campaigns/{id}/start", None),
    ("POST", "/campaigns/{id}/pause", None),
    ("POST", "/campaigns/{id}/complete", None),
    ("POST", "/campaigns/{id}/resume", {"segment": "not_contacted"}),
]


def test_another_accounts_campaign_is_not_found_on_every_path(api: Api) -> None:
    owner, stranger = api.as_new_account(), api.as_new_account()
    campaign = create(owner)
    post(owner, f"/campaigns/{campaign['id']}/start")
    post(owner, f"/campaigns/{campaign['id']}/pause")
    for method, template, body in CAMPAIGN_ROUTES:
        path = template.format(id=campaign["id"])
        answer = stranger.http.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["code"] == "not_found"
    missing_id = str(uuid.uuid4())
    missing = stranger.http.get(f"/campaigns/{missing_id}")
    foreign = stranger.http.get(f"/campaigns/{campaign['id']}")
    # Word for word the answer about a campaign that does not exist.
    assert without_ids(foreign, campaign["id"]) == without_ids(missing, missing_id)
    with transaction(api.database_url) as session:
        stored = session.get_one(Campaign, uuid.UUID(campaign["id"]))
        assert (stored.status, stored.concurrency) == ("paused", 5)
    listing = stranger.http.get("/campaigns").json()
    assert listing["data"] == []
    assert listing["pagination"]["total"] == 0
    assert stranger.http.get("/campaigns", params={"status": "paused"}).json()["data"] == []


SCOPED_ROUTES = [
    ("POST", "/campaigns", "campaigns:write"),
    ("GET", "/campaigns", "campaigns:read"),
    ("GET", "/campaigns/{id}", "campaigns:read"),
    ("PATCH", "/campaigns/{id}", "campaigns:write"),
    ("POST", "/campaigns/{id}/start", "campaigns:write"),
    ("POST", "/campaigns/{id}/pause", "campaigns:write"),
    ("POST", "/campaigns/{id}/complete", "campaigns:write"),
    ("POST", "/campaigns/{id}/resume", "campaigns:write"),
]


@pytest.mark.parametrize(("method", "template", "scope"), SCOPED_ROUTES)
def test_every_route_needs_its_scope_and_a_key(
    api: Api, method: str, template: str, scope: str
) -> None:
    owner = api.as_new_account()
    path = template.format(id=create(owner)["id"])
    others = [s for s in ("campaigns:read", "campaigns:write", "customers:read") if s != scope]
    with api.client(api.key(owner.account_id, others)) as http:
        refused = http.request(method, path, json=spec("Other"))
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert scope in refused.json()["message"]
    with api.client() as http:
        anonymous = http.request(method, path, json=spec("Other"))
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "api_key_invalid"


def test_window_times_are_declared_as_they_are_sent(api: Api) -> None:
    """JSON Schema's format "time" requires an offset; the window is sent without one."""
    client = api.as_new_account()
    sent = create(client)["call_working_hours"]
    document = client.http.get("/openapi.json").json()
    for model in ("CallWindowOut", "CallWindowIn"):
        properties = document["components"]["schemas"][model]["properties"]
        for name in ("start", "end"):
            declared = properties[name]
            assert declared.get("format") != "time", f"{model}.{name}"
            assert re.fullmatch(declared["pattern"], sent[name]), (model, name, sent[name])
