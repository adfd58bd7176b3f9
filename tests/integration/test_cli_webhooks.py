"""``dialer webhooks``: add (secret once), list with state, disable/enable, deliveries, remove."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from dialer.cli.main import app
from dialer.policies.vocabulary import WebhookEventType
from dialer.services import webhooks
from dialer.services.accounts import DEFAULT_ACCOUNT, get_or_create_account
from dialer.settings import get_settings
from models.session import transaction


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_add_list_switch_log_and_remove(cli: CliRunner, clean_db: str) -> None:
    out = run(cli, "webhooks", "add", "https://hooks.example.com/x", "-e", "call.completed",
              "-e", "contact.closed", "--description", "CRM")  # fmt: skip
    endpoint_id = re.search(r"endpoint (\S+):", out).group(1)  # type: ignore[union-attr]
    assert re.search(r"secret whsec_[0-9a-f]{48}", out)
    assert "whsec_" not in run(cli, "webhooks", "list")  # the secret is shown once
    assert "enabled" in run(cli, "webhooks", "list")

    assert "disabled" in run(cli, "webhooks", "enable", endpoint_id, "--off")
    assert "DISABLED: disabled by the account" in run(cli, "webhooks", "list")
    assert "enabled" in run(cli, "webhooks", "enable", endpoint_id)

    with transaction(clean_db) as session:
        account_id = get_or_create_account(session, DEFAULT_ACCOUNT).id
        event = webhooks.WebhookEvent(
            account_id, WebhookEventType.CONTACT_CLOSED, datetime(2026, 11, 23, tzinfo=UTC), {}
        )
        webhooks.announce(session, [event])
    log = run(cli, "webhooks", "deliveries", endpoint_id)
    assert "contact.closed" in log
    assert "pending" in log
    assert "contact.closed" not in run(cli, "webhooks", "deliveries", endpoint_id,
                                       "--status", "delivered")  # fmt: skip

    assert "removed" in run(cli, "webhooks", "remove", endpoint_id)
    run(cli, "webhooks", "remove", endpoint_id, code=1)
    run(cli, "webhooks", "deliveries", endpoint_id, code=1)


def test_bad_urls_and_events_are_refused(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    run(cli, "webhooks", "add", "ftp://hooks.example.com/x", code=1)
    run(cli, "webhooks", "add", "http://127.0.0.1:9000/x", code=1)
    run(cli, "webhooks", "add", "https://hooks.example.com/x", "-e", "call.started", code=2)
    monkeypatch.setenv("DIALER_WEBHOOK_ALLOW_PRIVATE_URLS", "true")
    get_settings.cache_clear()
    assert "secret" in run(cli, "webhooks", "add", "http://127.0.0.1:9000/x")
