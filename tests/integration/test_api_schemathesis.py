"""Schemathesis against the app's own OpenAPI document: no input makes it answer 5xx.

Every operation gets a bounded number of generated requests (valid and invalid
ones), sent through the ASGI app on the test database with a key holding every
scope, so each request reaches the route's code. The only check is the one that
matters here: not a server error.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from dialer.api import create_app
from dialer.services.accounts import get_or_create_account
from dialer.services.api_keys import SCOPES, issue_key
from dialer.settings import Settings
from models.session import transaction

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def api_schema(base_settings: Settings, database_url: str) -> Any:
    app = create_app(
        base_settings.model_copy(update={"database_url": database_url}),
        lambda: transaction(database_url),
        enqueue_apply=lambda _inbox_id: None,
        readiness={},
    )
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def secret(database_url: str) -> str:
    with transaction(database_url) as session:
        account = get_or_create_account(session, "schemathesis")
        return issue_key(session, account.id, "fuzz", list(SCOPES)).secret


def test_no_request_makes_the_api_fail(api_schema: Any, secret: str) -> None:
    # Operations are walked here rather than with schemathesis' pytest plugin, whose
    # fixture loader does not run under this pytest version.
    headers = {"Authorization": f"Bearer {secret}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15  # the control API is all there

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def never_a_server_error(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        never_a_server_error()
