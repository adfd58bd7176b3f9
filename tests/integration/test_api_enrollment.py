"""Control API, enrollment: customers into a campaign as JSON or as a streamed CSV file."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
from anyio import to_thread
from sqlalchemy import func, select

from dialer.api.routes import customers as customer_routes
from dialer.api.uploads import body_lines
from dialer.services.outbox import CAMPAIGN_STARTED
from models import Customer, Enrollment, OutboxEvent
from models.session import transaction
from tests.integration.api_support import AccountClient, Api
from tests.integration.pipeline_support import BASE_SPEC, rome_phone

CSV_HEADERS = {"Content-Type": "text/csv"}


def new_campaign(client: AccountClient, name: str = "Spring") -> str:
    answer = client.http.post("/campaigns", json={**BASE_SPEC, "name": name})
    assert answer.status_code == 201, answer.text
    campaign_id: str = answer.json()["id"]
    return campaign_id


def upload(client: AccountClient, campaign_id: str, content: Any, **params: Any) -> httpx.Response:
    return client.http.post(
        f"/campaigns/{campaign_id}/customers/csv",
        content=content,
        params=params,
        headers=CSV_HEADERS,
    )


def enrolled(api: Api, campaign_id: str) -> dict[str, str]:
    """customer_id -> enrollment state."""
    with transaction(api.database_url) as session:
        rows = session.execute(
            select(Customer.customer_id, Enrollment.state)
            .join(Enrollment, Enrollment.customer_id == Customer.id)
            .where(Enrollment.campaign_id == uuid.UUID(campaign_id))
        ).all()
    return {str(ref): state for ref, state in rows}


def customer_count(api: Api) -> int:
    with transaction(api.database_url) as session:
        return session.scalar(select(func.count()).select_from(Customer)) or 0


# --------------------------------------------------------------------------- JSON


def test_json_enrollment_creates_updates_and_reports(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    path = f"/campaigns/{campaign_id}/customers"
    first = client.http.post(
        path,
        json=[
            {"customer_id": "a", "name": "Ann", "phone": rome_phone(1)},
            {"customer_id": "b", "name": "Bob"},
        ],
    )
    assert first.status_code == 200, first.text
    assert first.json() == {
        "rows_read": 2,
        "enrolled": 2,
        "already_enrolled": 0,
        "customers_created": 2,
        "customers_updated": 0,
        "missing_contact": 1,
        "invalid_phone": 0,
        "opted_out": 0,
        "rejected": [],
        "rejected_count": 0,
    }
    second = client.http.post(path, json=[{"customer_id": "a", "name": "Anna"}]).json()
    assert (second["customers_updated"], second["already_enrolled"]) == (1, 1)
    assert enrolled(api, campaign_id) == {"a": "active", "b": "missing_contact"}
    listed = client.http.get("/customers", params={"q": "Anna"}).json()["data"]
    assert [(c["customer_id"], c["phone"]) for c in listed] == [("a", rome_phone(1))]


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"customer_id": "a"}, {"customer_id": "b", "email": "nope"}], "1.email"),
        ([{"customer_id": "a"}, {"customer_id": "b", "phone": "12"}], "1.phone"),
        ([{"customer_id": "a"}, {"customer_id": "a"}], "1.customer_id"),
        ([{"phone": rome_phone(1)}, {"customer_id": "b", "phone": rome_phone(1)}], "1.phone"),
        ([], "body"),
    ],
)
def test_a_bad_json_item_imports_nothing_and_is_named_by_index(
    api: Api, items: list[dict[str, Any]], field: str
) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    answer = client.http.post(f"/campaigns/{campaign_id}/customers", json=items)
    assert answer.status_code == 422, answer.text
    assert [d["field"] for d in answer.json()["details"]] == [field]
    assert enrolled(api, campaign_id) == {}
    assert customer_count(api) == 0


def test_a_json_request_holds_at_most_1000_customers(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    items = [{"customer_id": f"c{n}"} for n in range(1001)]
    answer = client.http.post(f"/campaigns/{campaign_id}/customers", json=items)
    assert answer.status_code == 422
    assert [d["field"] for d in answer.json()["details"]] == ["body"]
    ok = client.http.post(f"/campaigns/{campaign_id}/customers", json=items[:1000])
    assert ok.json()["enrolled"] == 1000


def test_enrolling_in_a_running_campaign_asks_for_the_newcomers_first_contacts(
    api: Api,
) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    path = f"/campaigns/{campaign_id}/customers"
    client.http.post(path, json=[{"customer_id": "a", "phone": rome_phone(1)}])
    client.http.post(f"/campaigns/{campaign_id}/start")
    client.http.post(path, json=[{"customer_id": "b", "phone": rome_phone(2)}])
    client.http.post(path, json=[{"customer_id": "b"}])  # nobody new: nothing to ask
    with transaction(api.database_url) as session:
        events = session.scalars(select(OutboxEvent).order_by(OutboxEvent.created_at)).all()
    assert [e.topic for e in events] == [CAMPAIGN_STARTED, CAMPAIGN_STARTED]
    assert events[1].payload["cause"] == "customers_enrolled"


# --------------------------------------------------------------------------- CSV

GOOD_AND_BAD = (
    "customer_id,name,phone,email,plan\n"
    f"a,Ann,{rome_phone(1)},,gold\n"
    "b,Bob,,bob@example,silver\n"  # line 3: bad email
    "c,Cy,12,,gold\n"  # line 4: only the phone is bad: enrolled as failed
    f"a,Ann again,{rome_phone(3)},,gold\n"  # line 5: repeats line 2
)


def test_a_csv_with_bad_rows_imports_nothing_and_names_each_line(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    answer = upload(client, campaign_id, GOOD_AND_BAD)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "import_rejected"
    assert "2 bad row(s); nothing was imported" in body["message"]
    assert body["details"] == [
        {"line": "3", "field": "email", "reason": "'bob@example' is not an email address"},
        {"line": "5", "field": "duplicate", "reason": "customer_id repeats line 2"},
    ]
    assert enrolled(api, campaign_id) == {}
    assert customer_count(api) == 0


def test_a_partial_csv_import_keeps_the_good_rows_and_lists_the_bad(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    answer = upload(client, campaign_id, GOOD_AND_BAD, partial="true")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["rows_read"], report["enrolled"], report["invalid_phone"]) == (4, 2, 1)
    assert [(p["line"], p["field"]) for p in report["rejected"]] == [
        (3, "email"),
        (5, "duplicate"),
    ]
    assert enrolled(api, campaign_id) == {"a": "active", "c": "failed"}
    ann = client.http.get("/customers", params={"q": "Ann"}).json()["data"][0]
    assert ann["fields"] == {"plan": "gold"}


def test_a_partial_import_rejects_a_directory_timezone_and_keeps_the_rest(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    body = (
        f"customer_id,name,phone,timezone\na,Ann,{rome_phone(1)},America\nb,Bob,{rome_phone(2)},\n"
    )
    answer = upload(client, campaign_id, body, partial="true")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["rows_read"], report["enrolled"]) == (2, 1)
    assert [(p["line"], p["field"]) for p in report["rejected"]] == [(2, "timezone")]
    assert "unknown IANA time zone" in report["rejected"][0]["reason"]
    assert enrolled(api, campaign_id) == {"b": "active"}


def test_a_csv_is_read_as_it_arrives(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    text = "\ufeffcustomer_id,name,phone\r\n" + "".join(
        f"c{n},Name {n},{rome_phone(n)}\r\n" for n in range(300)
    )
    data = text.encode()

    def chunks() -> Iterator[bytes]:  # odd sizes: lines and characters split across chunks
        for start in range(0, len(data), 97):
            yield data[start : start + 97]

    answer = upload(client, campaign_id, chunks(), default_region="IT")
    assert answer.status_code == 200, answer.text
    assert answer.json()["enrolled"] == 300
    assert enrolled(api, campaign_id)["c299"] == "active"


def test_national_numbers_need_the_default_region(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    body = "customer_id,phone\na,06 1234 5601\n"
    without = upload(client, campaign_id, body, partial="true").json()
    assert without["invalid_phone"] == 1
    other = new_campaign(client, "Other")
    assert upload(client, other, body, default_region="IT").json()["invalid_phone"] == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"name,surname\nAnn,Rossi\n", "line 1 must name"),
        (b"customer_id,name\n\xff\xfe,Ann\n", "not UTF-8"),
    ],
)
def test_a_file_that_is_not_a_customers_csv_is_refused(
    api: Api, content: bytes, reason: str
) -> None:
    client = api.as_new_account()
    answer = upload(client, new_campaign(client), content)
    assert answer.status_code == 422
    assert answer.json()["details"][0]["field"] == "body"
    assert reason in answer.json()["message"]


def test_a_multipart_form_is_refused_with_a_hint(api: Api) -> None:
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    answer = client.http.post(
        f"/campaigns/{campaign_id}/customers/csv",
        files={"file": ("people.csv", b"customer_id\na\n", "text/csv")},
    )
    assert answer.status_code == 415
    assert "Content-Type: text/csv" in answer.json()["message"]


def test_an_upload_over_the_limit_is_413_and_imports_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(customer_routes, "MAX_CSV_UPLOAD_BYTES", 2000)
    client = api.as_new_account()
    campaign_id = new_campaign(client)
    rows = "customer_id,phone\n" + "".join(f"c{n},{rome_phone(n)}\n" for n in range(150))
    assert len(rows) > 2000
    declared = upload(client, campaign_id, rows)  # Content-Length: refused before reading
    assert declared.status_code == 413
    assert declared.json()["code"] == "payload_too_large"
    data = rows.encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused once 2000 bytes arrived
        for start in range(0, len(data), 100):
            yield data[start : start + 100]

    streamed = upload(client, campaign_id, chunks())
    assert streamed.status_code == 413
    assert "larger than 2000 bytes" in streamed.json()["message"]
    assert enrolled(api, campaign_id) == {}  # the rows read before the limit were rolled back


def test_lines_are_handed_on_before_the_body_has_arrived() -> None:
    pulled: list[bytes] = []

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"customer_id\n", b"a\nb", b"\n", b"c\n"):
            pulled.append(chunk)
            yield chunk

    def first_two_lines() -> tuple[list[str], int]:
        lines = body_lines(chunks(), max_bytes=100)
        return [next(lines), next(lines)], len(pulled)

    lines, chunks_read = anyio.run(to_thread.run_sync, first_two_lines)
    assert lines == ["customer_id\n", "a\n"]
    assert chunks_read == 2  # the rest of the body was not read yet


# --------------------------------------------------------------------------- isolation and keys


def test_another_accounts_campaign_cannot_be_enrolled_in(api: Api) -> None:
    owner, stranger = api.as_new_account(), api.as_new_account()
    campaign_id = new_campaign(owner)
    path = f"/campaigns/{campaign_id}/customers"
    owner.http.post(path, json=[{"customer_id": "a", "phone": rome_phone(1)}])
    as_json = stranger.http.post(path, json=[{"customer_id": "b"}])
    as_csv = upload(stranger, campaign_id, "customer_id\nb\n")
    for answer in (as_json, as_csv):
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "not_found"
    assert enrolled(api, campaign_id) == {"a": "active"}
    assert customer_count(api) == 1


def test_the_same_customer_id_in_two_accounts_is_two_customers(api: Api) -> None:
    first, second = api.as_new_account(), api.as_new_account()
    mine, theirs = new_campaign(first), new_campaign(second)
    first.http.post(f"/campaigns/{mine}/customers", json=[{"customer_id": "a", "name": "Ann"}])
    report = upload(second, theirs, "customer_id,name\na,Eve\n").json()
    assert report["customers_created"] == 1
    assert [c["name"] for c in first.http.get("/customers").json()["data"]] == ["Ann"]
    assert [c["name"] for c in second.http.get("/customers").json()["data"]] == ["Eve"]


@pytest.mark.parametrize("missing", ["campaigns:write", "customers:write"])
@pytest.mark.parametrize("route", ["json", "csv"])
def test_enrolling_needs_both_write_scopes_and_a_key(api: Api, missing: str, route: str) -> None:
    owner = api.as_new_account()
    campaign_id = new_campaign(owner)
    scopes = [s for s in ("campaigns:write", "customers:write", "campaigns:read") if s != missing]
    path = f"/campaigns/{campaign_id}/customers" + ("/csv" if route == "csv" else "")
    body: dict[str, Any] = (
        {"json": [{"customer_id": "a"}]}
        if route == "json"
        else {"content": "customer_id\na\n", "headers": CSV_HEADERS}
    )
    with api.client(api.key(owner.account_id, scopes)) as http:
        refused = http.post(path, **body)
    assert refused.status_code == 403
    assert missing in refused.json()["message"]
    with api.client() as http:
        assert http.post(path, **body).status_code == 401
    assert enrolled(api, campaign_id) == {}
