"""Control API, /webhook-endpoints: create (secret once), list, switch, delete, log (issue 17)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from dialer.policies.vocabulary import WebhookEventType
from dialer.services import webhooks
from models import WebhookEndpoint
from models.session import transaction
from tests.integration.api_support import Api

HOOK = {"url": "https://hooks.example.com/dialer", "events": ["call.completed", "campaign.started"]}
T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)


def test_create_list_read_switch_and_delete(api: Api) -> None:
    client = api.as_new_account()
    created = client.http.post("/webhook-endpoints", json={**HOOK, "description": "CRM"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["events"] == ["call.completed", "campaign.started"]
    assert body["enabled"] is True
    assert body["disabled_reason"] is None
    endpoint_id = body["id"]

    listed = client.http.get("/webhook-endpoints").json()["data"]
    assert [row["id"] for row in listed] == [endpoint_id]
    assert "secret" not in listed[0]  # shown once, at creation
    one = client.http.get(f"/webhook-endpoints/{endpoint_id}")
    assert one.status_code == 200
    assert "secret" not in one.json()

    off = client.http.patch(f"/webhook-endpoints/{endpoint_id}", json={"enabled": False}).json()
    assert (off["enabled"], off["disabled_reason"]) == (False, "disabled by the account")
    on = client.http.patch(f"/webhook-endpoints/{endpoint_id}", json={"enabled": True}).json()
    assert (on["enabled"], on["disabled_reason"], on["consecutive_failures"]) == (True, None, 0)

    assert client.http.delete(f"/webhook-endpoints/{endpoint_id}").status_code == 204
    assert client.http.delete(f"/webhook-endpoints/{endpoint_id}").status_code == 404
    assert client.http.get("/webhook-endpoints").json()["data"] == []


def test_another_account_sees_and_touches_nothing(api: Api) -> None:
    owner = api.as_new_account()
    endpoint_id = owner.http.post("/webhook-endpoints", json=HOOK).json()["id"]
    other = api.as_new_account()
    assert other.http.get("/webhook-endpoints").json()["data"] == []
    assert other.http.get(f"/webhook-endpoints/{endpoint_id}").status_code == 404
    assert other.http.get(f"/webhook-endpoints/{endpoint_id}/deliveries").status_code == 404
    assert (
        other.http.patch(f"/webhook-endpoints/{endpoint_id}", json={"enabled": False}).status_code
        == 404
    )
    assert other.http.delete(f"/webhook-endpoints/{endpoint_id}").status_code == 404
    assert owner.http.get(f"/webhook-endpoints/{endpoint_id}").json()["enabled"] is True


def test_bad_urls_and_events_are_refused_naming_the_field(api: Api) -> None:
    client = api.as_new_account()
    for url, words in [
        ("ftp://hooks.example.com/x", "only http and https"),
        ("http://127.0.0.1:8080/x", "private"),
        ("http://169.254.169.254/latest", "private"),
        ("http://localhost/x", "local host"),
    ]:
        answer = client.http.post("/webhook-endpoints", json={**HOOK, "url": url})
        assert answer.status_code == 422, url
        assert words in answer.text, url
    answer = client.http.post("/webhook-endpoints", json={**HOOK, "events": ["call.started"]})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"][-2:] == ["events", 0]
    assert client.http.post("/webhook-endpoints", json={**HOOK, "events": []}).status_code == 422


def test_reading_and_writing_need_the_webhooks_scopes(api: Api) -> None:
    reader = api.as_new_account(scopes=["webhooks:read"])
    assert reader.http.get("/webhook-endpoints").status_code == 200
    assert reader.http.post("/webhook-endpoints", json=HOOK).status_code == 403
    campaigns_only = api.as_new_account(scopes=["campaigns:read", "campaigns:write"])
    assert campaigns_only.http.get("/webhook-endpoints").status_code == 403
    assert api.client().get("/webhook-endpoints").status_code == 401


def test_the_delivery_log_pages_newest_first_and_filters_by_status(api: Api) -> None:
    client = api.as_new_account()
    endpoint_id = uuid.UUID(client.http.post("/webhook-endpoints", json=HOOK).json()["id"])
    with transaction(api.database_url) as session:
        events = [
            webhooks.WebhookEvent(
                client.account_id, WebhookEventType.CAMPAIGN_STARTED, T0, {"n": n}
            )
            for n in range(3)
        ]
        assert webhooks.announce(session, events) == 3
        assert webhooks.announce(session, events) == 3  # the same ids: kept once
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.id == endpoint_id
    first = client.http.get(
        f"/webhook-endpoints/{endpoint_id}/deliveries", params={"limit": 2}
    ).json()
    assert [row["payload"]["data"]["n"] for row in first["data"]] == [2, 1]
    assert first["data"][0]["status"] == "pending"
    assert first["data"][0]["attempts"] == 0
    assert first["data"][0]["event_id"] == str(events[2].id)
    rest = client.http.get(
        f"/webhook-endpoints/{endpoint_id}/deliveries",
        params={"limit": 2, "before": first["next_before"]},
    ).json()
    assert [row["payload"]["data"]["n"] for row in rest["data"]] == [0]
    assert rest["next_before"] is None
    none = client.http.get(
        f"/webhook-endpoints/{endpoint_id}/deliveries", params={"status": "dead"}
    )
    assert none.json()["data"] == []
