"""The control API's shared core: health, readiness, keys, request ids, the envelope."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from dialer.api import create_app
from dialer.errors import ValidationFailed
from dialer.providers.signing import sign_headers
from dialer.sandbox.testing import serve_in_thread
from dialer.services.api_keys import authenticate, issue_key, list_keys, revoke_key
from dialer.settings import Settings
from models import ApiKey
from models.session import transaction
from tests.integration.api_support import Api
from tests.integration.test_api_campaigns import spec

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_liveness_needs_no_key(api: Api) -> None:
    with api.client() as http:
        answer = http.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_readiness_names_the_server_that_does_not_answer(api: Api) -> None:
    with api.client() as http:
        assert http.get("/readyz").json() == {
            "status": "ready",
            "checks": {"database": "ok", "redis": "ok"},
        }
        api.ready["redis"] = False
        answer = http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"database": "ok", "redis": "failed: ConnectionError"}


def test_a_key_is_stored_only_as_a_hash_and_authenticates_until_revoked(api: Api) -> None:
    account_id = api.account()
    with transaction(api.database_url) as session:
        issued = issue_key(session, account_id, "ops", ["calls:read"])
    assert issued.secret.startswith(issued.key.prefix + "_")
    with transaction(api.database_url) as session:
        row = session.scalars(select(ApiKey)).one()
        assert issued.secret not in (row.secret_hash, row.prefix, row.name)
        principal = authenticate(session, issued.secret)
        assert principal is not None
        assert principal.account_id == account_id
        assert principal.scopes == frozenset({"calls:read"})
        assert authenticate(session, issued.secret[:-1] + "x") is None
        assert [key.prefix for key in list_keys(session, account_id)] == [issued.key.prefix]
        revoke_key(session, account_id, issued.key.prefix, NOW)
    with transaction(api.database_url) as session:
        assert authenticate(session, issued.secret) is None


def test_unknown_scopes_are_refused_by_name(api: Api) -> None:
    account_id = api.account()
    with transaction(api.database_url) as session, pytest.raises(ValidationFailed) as refused:
        issue_key(session, account_id, "bad", ["calls:read", "everything"])
    assert refused.value.field == "scopes"
    assert "everything" in refused.value.reason


def test_a_sane_request_id_is_echoed_and_a_bad_one_replaced(api: Api) -> None:
    with api.client() as http:
        given = http.get("/healthz", headers={"X-Request-ID": "req-123"})
        bad = http.get("/healthz", headers={"X-Request-ID": "no spaces allowed"})
    assert given.headers["X-Request-ID"] == "req-123"
    assert bad.headers["X-Request-ID"] != "no spaces allowed"
    assert len(bad.headers["X-Request-ID"]) == 36


def test_an_unknown_path_answers_in_the_envelope(api: Api) -> None:
    with api.client() as http:
        answer = http.get("/no/such/path", headers={"X-Request-ID": "r-1"})
    assert answer.status_code == 404
    assert answer.json() == {
        "message": "Not Found",
        "error": "Not Found",
        "code": "not_found",
        "statusCode": 404,
        "request_id": "r-1",
    }


def test_the_openapi_document_leaves_the_webhooks_out(api: Api) -> None:
    with api.client() as http:
        document = http.get("/openapi.json").json()
    assert document["info"]["title"] == "Campaign dialer API"
    assert "/healthz" in document["paths"]
    assert not any(path.startswith("/webhooks") for path in document["paths"])


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(api: Api) -> None:
    secret = api.key(api.account())
    body = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    with api.client(secret) as http:
        answer = http.post("/customers", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"
    assert answer.json()["request_id"] == answer.headers["X-Request-ID"]


def _raw_chunked_post(api: Api, path: str, chunks: list[bytes], secret: str | None) -> bytes:
    """Send the request head and ``chunks`` chunked, but never the last chunk: the answer
    must come from what was sent so far (a server that reads the body whole never answers)."""
    host, port = api.base_url.removeprefix("http://").split(":")
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        *([f"Authorization: Bearer {secret}"] if secret else []),
    ]
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        for chunk in chunks:
            conn.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            received = conn.recv(65536)
            if not received:
                break
            answer += received
    return answer


def test_a_chunked_body_without_a_key_is_refused_before_it_is_read(api: Api) -> None:
    answer = _raw_chunked_post(api, "/customers", [b'{"name": "'], secret=None)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


def test_a_chunked_body_is_counted_while_it_arrives_and_refused_past_the_limit(
    api: Api,
) -> None:
    secret = api.key(api.account())
    megabyte = b"x" * (1024 * 1024)
    answer = _raw_chunked_post(api, "/customers", [b'{"name": "', megabyte], secret)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_a_chunked_body_within_the_limit_is_read(api: Api) -> None:
    client = api.as_new_account()
    answer = client.http.post(
        "/customers",
        content=iter([b'{"customer_id": ', b'"chunked-1"}']),  # no Content-Length: chunked
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["customer_id"] == "chunked-1"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/webhooks/nowhere", 404),
        ("GET", "/webhooks/whatsapp", 403),  # Meta's handshake, without its verify token
        ("POST", "/webhooks/whatsapp", 401),  # unsigned
        ("POST", "/webhooks/calls/unknown", 401),
    ],
)
def test_webhook_routes_answer_in_the_ingress_shape_not_the_envelope(
    api: Api, method: str, path: str, status: int
) -> None:
    with api.client() as http:
        answer = http.request(method, path, content=b"{}")
    assert answer.status_code == status
    assert set(answer.json()) == {"error"}, answer.text
    assert set(answer.json()["error"]) >= {"code", "message"}


def test_a_webhook_that_cannot_be_stored_is_a_500_in_the_ingress_shape(
    base_settings: Settings,
) -> None:
    def database_down() -> Any:
        raise ConnectionRefusedError("database down")

    app = create_app(base_settings, database_down, enqueue_apply=lambda _id: None)
    body = b'{"object": "whatsapp_business_account", "entry": []}'
    secret = base_settings.webhook_secret.get_secret_value()
    with serve_in_thread(app) as url:
        answer = httpx.post(
            f"{url}/webhooks/whatsapp",
            content=body,
            headers=sign_headers(secret, int(time.time()), body),
        )
    assert answer.status_code == 500
    assert answer.json() == {
        "error": {"code": "internal_error", "message": "the event was not stored; send it again"}
    }


def _assert_seed_validation_error(answer: httpx.Response) -> list[dict[str, Any]]:
    """Seed 000/002's HTTPValidationError ``detail`` beside seed 001's envelope."""
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "validation_error"
    assert body["statusCode"] == 422
    assert body["details"]
    detail = body["detail"]
    assert detail
    for item in detail:
        assert set(item) >= {"loc", "msg", "type"}
        assert isinstance(item["loc"], list)
        assert all(isinstance(part, str | int) for part in item["loc"])
        assert isinstance(item["msg"], str)
        assert isinstance(item["type"], str)
    return list(detail)


def test_a_422_carries_fastapis_detail_beside_the_envelope(api: Api) -> None:
    client = api.as_new_account()
    (limit,) = _assert_seed_validation_error(client.http.get("/calls", params={"limit": 0}))
    assert limit["loc"] == ["query", "limit"]
    (phone,) = _assert_seed_validation_error(
        client.http.post("/customers", json={"customer_id": "x", "phone": "not a number"})
    )
    assert phone["loc"] == ["body", "phone"]
    (nul,) = _assert_seed_validation_error(client.http.get("/calls", params={"q": "\x00"}))
    assert nul["loc"] == ["query", "q"]
    # A service's refusal (a template placeholder no customer can fill) too.
    refused = client.http.post("/campaigns", json=spec(call_opening_message="Hi {{nickname}}"))
    assert _assert_seed_validation_error(refused)[0]["loc"] == ["body", "call_opening_message"]
