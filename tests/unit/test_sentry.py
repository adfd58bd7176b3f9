"""Sentry: off without a DSN; with one, reports leave the process with personal data masked.

The transport keeps envelopes in memory: nothing is sent anywhere.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from pydantic import SecretStr
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.transport import Transport

from dialer.composition.sentry import init_sentry
from dialer.settings import Settings

DSN = SecretStr("https://public@o0.ingest.sentry.invalid/1")
PHONE = "+14155550123"
EMAIL = "maria.rossi@example.com"
# Built at run time: the report carries source lines, which must not hold the name itself.
NAME = " ".join(("Maria", "Rossi"))


class Kept(Transport):
    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope)

    def events(self) -> list[dict[str, Any]]:
        found = [e.get_event() for e in self.envelopes]
        return [event for event in found if event is not None]


@pytest.fixture
def kept() -> Iterator[Kept]:
    transport = Kept()
    yield transport
    sentry_sdk.get_client().close()
    sentry_sdk.init(dsn=None)  # leave no active client to the next test


def _fail_with_personal_data(customer_phone: str) -> None:
    raise ValueError(f"provider refused {customer_phone} ({EMAIL})")


def test_without_a_dsn_sentry_stays_off(kept: Kept) -> None:
    assert init_sentry(Settings(), "api", transport=kept) is False
    assert not sentry_sdk.get_client().is_active()


def test_a_report_carries_no_phone_email_name_or_local_variables(kept: Kept) -> None:
    settings = Settings(sentry_dsn=DSN, sentry_environment="test")
    assert init_sentry(settings, "api", transport=kept) is True
    logging.getLogger("dialer.test").warning("calling %s", PHONE)  # a breadcrumb
    sentry_sdk.set_context("customer", {"name": NAME, "phone": PHONE})
    try:
        _fail_with_personal_data(PHONE)
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush()

    (event,) = kept.events()
    text = json.dumps(event)
    assert PHONE not in text
    assert EMAIL not in text
    assert NAME not in text
    value = event["exception"]["values"][0]["value"]
    assert value.startswith("provider refused +1")  # masked, still readable
    frames = event["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames
    assert all("vars" not in frame for frame in frames)
    assert event["server_name"] == "api"
    assert event["environment"] == "test"
    assert "calling" in text  # the breadcrumb is kept, masked


def test_the_celery_processes_get_beat_monitoring(kept: Kept) -> None:
    settings = Settings(sentry_dsn=DSN)
    init_sentry(settings, "celery", [CeleryIntegration(monitor_beat_tasks=True)], transport=kept)
    celery = sentry_sdk.get_client().get_integration(CeleryIntegration)
    assert celery is not None
    assert celery.monitor_beat_tasks is True
