"""The control API under test: the real app on the test database, over real HTTP.

``api`` serves ``create_app`` with uvicorn on a loopback port (module-scoped, so
the server starts once per module) and gives an httpx client plus helpers to make
accounts and keys. Every test gets an empty database (``clean_db``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from dialer.api import create_app
from dialer.sandbox.testing import serve_in_thread
from dialer.services.accounts import get_or_create_account
from dialer.services.api_keys import SCOPES, issue_key
from dialer.settings import Settings
from models.session import transaction


@dataclass
class Api:
    """A running app and what a test needs to talk to it as some account."""

    base_url: str
    database_url: str
    enqueued: list[uuid.UUID] = field(default_factory=list)
    ready: dict[str, bool] = field(default_factory=lambda: {"database": True, "redis": True})

    def client(self, secret: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10, **kwargs)

    def account(self, name: str | None = None) -> uuid.UUID:
        with transaction(self.database_url) as session:
            return get_or_create_account(session, name or f"acct-{uuid.uuid4().hex[:8]}").id

    def key(self, account_id: uuid.UUID, scopes: tuple[str, ...] | list[str] = SCOPES) -> str:
        """A new key's secret for ``account_id`` (all scopes unless told)."""
        with transaction(self.database_url) as session:
            return issue_key(session, account_id, "test", list(scopes)).secret

    def as_new_account(self, scopes: tuple[str, ...] | list[str] = SCOPES) -> AccountClient:
        account_id = self.account()
        return AccountClient(account_id, self.client(self.key(account_id, scopes)))


@dataclass
class AccountClient:
    account_id: uuid.UUID
    http: httpx.Client


def _readiness_check(api: Api, name: str) -> Any:
    def check() -> None:
        if not api.ready[name]:
            raise ConnectionError(f"{name} is down (test switch)")

    return check


@pytest.fixture(scope="module")
def api_server(base_settings: Settings, database_url: str, redis_url: str) -> Iterator[Api]:
    settings = base_settings.model_copy(
        update={"database_url": database_url, "redis_url": redis_url}
    )
    api = Api(base_url="", database_url=database_url)
    app = create_app(
        settings,
        lambda: transaction(database_url),
        enqueue_apply=api.enqueued.append,
        readiness={name: _readiness_check(api, name) for name in api.ready},
    )
    with serve_in_thread(app) as url:
        api.base_url = url
        yield api


@pytest.fixture
def api(api_server: Api, clean_db: str) -> Api:
    api_server.enqueued.clear()
    api_server.ready.update(database=True, redis=True)
    return api_server
