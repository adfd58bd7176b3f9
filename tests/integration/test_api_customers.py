"""Control API, customers: create, read, list with search, inside the key's account."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.integration.api_support import AccountClient, Api
from tests.integration.pipeline_support import rome_phone

SEED_000_FIELDS = {
    "id",
    "customer_id",
    "name",
    "surname",
    "email",
    "phone",
    "status",
    "agent_id",
    "created_at",
    "updated_at",
}


def create(client: AccountClient, **fields: Any) -> dict[str, Any]:
    answer = client.http.post("/customers", json=fields)
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def names(answer: httpx.Response) -> list[str]:
    return [c["name"] for c in answer.json()["data"]]


def test_create_and_read_a_customer(api: Api) -> None:
    client = api.as_new_account()
    created = create(
        client,
        customer_id="crm-1",
        name="Ann",
        surname="Rossi",
        email="ann@example.com",
        phone="+39 06 1234 5600",
        timezone="Europe/Rome",
        fields={"plan": "gold"},
    )
    assert created.keys() >= SEED_000_FIELDS
    assert created["phone"] == "+390612345600"  # stored in E.164
    assert created["fields"] == {"plan": "gold"}
    assert created["opted_out"] is False
    fetched = client.http.get(f"/customers/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"customer_id": "x", "phone": "not a number"}, "phone"),
        ({"customer_id": "x", "email": "nope"}, "email"),
        ({"customer_id": "x", "timezone": "Mars/Olympus"}, "timezone"),
        ({"customer_id": "x", "timezone": "America"}, "timezone"),  # a zone-files directory
        ({"customer_id": "x", "timezone": "x" * 300}, "timezone"),
        ({"customer_id": "x", "shoe_size": "42"}, "shoe_size"),
        ({"name": "Nobody"}, "body"),  # nothing to identify them by
    ],
)
def test_an_invalid_customer_is_refused_naming_the_field(
    api: Api, fields: dict[str, Any], field: str
) -> None:
    client = api.as_new_account()
    answer = client.http.post("/customers", json=fields)
    assert answer.status_code == 422
    assert [d["field"] for d in answer.json()["details"]] == [field]


def test_a_customer_id_or_phone_already_taken_is_a_conflict(api: Api) -> None:
    client, other = api.as_new_account(), api.as_new_account()
    create(client, customer_id="crm-1", phone=rome_phone(1))
    again = client.http.post("/customers", json={"customer_id": "crm-1"})
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    same_phone = client.http.post("/customers", json={"phone": rome_phone(1)})
    assert same_phone.status_code == 409
    create(client, customer_id="crm-2", phone=rome_phone(1))  # an id tells them apart
    create(other, customer_id="crm-1", phone=rome_phone(1))  # another account's are its own


def test_the_list_pages_and_searches(api: Api) -> None:
    client = api.as_new_account()
    create(client, customer_id="a", name="Ann", surname="Rossi", phone=rome_phone(1))
    create(client, customer_id="b", name="Bob", email="bob@example.com")
    create(client, customer_id="c", name="Cy", surname="Bianchi_50%")
    first = client.http.get("/customers", params={"limit": 2})
    assert names(first) == ["Cy", "Bob"]  # newest first
    assert first.json()["pagination"] == {"total": 3, "limit": 2, "offset": 0, "has_more": True}
    assert first.json()["meta"]["request_id"]
    second = client.http.get("/customers", params={"limit": 2, "offset": 2})
    assert names(second) == ["Ann"]
    assert second.json()["pagination"]["has_more"] is False
    past = client.http.get("/customers", params={"offset": 3}).json()
    assert past["data"] == []
    assert past["pagination"]["total"] == 3
    assert names(client.http.get("/customers", params={"q": "ross"})) == ["Ann"]
    assert names(client.http.get("/customers", params={"q": "1234"})) == ["Ann"]  # phone
    assert names(client.http.get("/customers", params={"q": "@example"})) == ["Bob"]
    assert names(client.http.get("/customers", params={"q": "_50%"})) == ["Cy"]
    assert names(client.http.get("/customers", params={"q": "%"})) == ["Cy"]  # not a wildcard
    nothing = client.http.get("/customers", params={"q": "zzz"}).json()
    assert nothing["data"] == []
    assert nothing["pagination"]["total"] == 0


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
    answer = api.as_new_account().http.get("/customers", params=params)
    assert answer.status_code == 422
    assert [d["field"] for d in answer.json()["details"]] == [field]


def test_another_accounts_customer_is_not_found_and_not_listed(api: Api) -> None:
    owner, stranger = api.as_new_account(), api.as_new_account()
    customer = create(owner, customer_id="crm-1", name="Ann", phone=rome_phone(1))
    foreign = stranger.http.get(f"/customers/{customer['id']}")
    missing = stranger.http.get(f"/customers/{uuid.uuid4()}")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["code"] == "not_found"
    listing = stranger.http.get("/customers", params={"q": "Ann"}).json()
    assert listing["data"] == []
    assert listing["pagination"]["total"] == 0
    assert stranger.http.get("/customers").json()["pagination"]["total"] == 0


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/customers", "customers:write"),
        ("GET", "/customers", "customers:read"),
        ("GET", "/customers/{id}", "customers:read"),
    ],
)
def test_every_route_needs_its_scope_and_a_key(
    api: Api, method: str, path: str, scope: str
) -> None:
    owner = api.as_new_account()
    customer = create(owner, customer_id="crm-1")
    url = path.format(id=customer["id"])
    others = [s for s in ("customers:read", "customers:write", "campaigns:write") if s != scope]
    with api.client(api.key(owner.account_id, others)) as http:
        refused = http.request(method, url, json={"customer_id": "crm-2"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert scope in refused.json()["message"]
    with api.client() as http:
        assert http.request(method, url, json={"customer_id": "crm-2"}).status_code == 401
