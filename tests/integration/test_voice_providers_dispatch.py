"""Dispatch as it is, through each hosted adapter, over loopback HTTP, with a lost answer.

Real PostgreSQL (the campaign, its claimed attempts), the project's dispatch service,
and a fake of each provider's HTTP shape on 127.0.0.1 whose first create answer is
lost (the client times out after the call was created). The ledger must show one
call per attempt: the lost call is found again by our metadata and recorded as
placed, or (Twilio, which keeps no metadata) the attempt is held ``uncertain``: not
failed, no successor planned, and a re-dispatch of every attempt sends nothing more.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from dialer.sandbox.testing import serve_in_thread
from dialer.services.dispatch import Verdict, dispatch_batch
from models.session import transaction
from scheduler.scan import scan_campaign
from tests.integration.fake_voice_providers import FakeProviders, fake_app
from tests.integration.pipeline_support import (
    LEGAL,
    attempts_of,
    customers_csv,
    make_driver,
    relay,
    setup_campaign,
    start,
)
from tests.integration.test_voice_providers_loopback import (
    CASES,
    KEYS,
    READ_TIMEOUT_SECONDS,
    Case,
)

pytestmark = pytest.mark.integration

# Monday 2026-11-23 10:00 in New York: inside the default window and the legal bound.
IN_WINDOW = datetime(2026, 11, 23, 15, tzinfo=UTC)
CALLER_IDS = ["+12125550199", "+12125550198"]


@pytest.fixture(scope="module")
def fake() -> FakeProviders:
    return FakeProviders(api_keys=KEYS)


@pytest.fixture(scope="module")
def base_url(fake: FakeProviders) -> Iterator[str]:
    with serve_in_thread(fake_app(fake)) as url:
        yield url


def _adapter(case: Case, base_url: str) -> Any:
    adapter = case.make(base_url)
    # Caller IDs by provider number id, where the provider wants one (Vapi, ElevenLabs).
    settings = getattr(adapter, "_settings", None)
    if settings is not None and hasattr(settings, "phone_number_ids"):
        settings.phone_number_ids.update(dict.fromkeys(CALLER_IDS, "pn_test"))
    return adapter


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_lost_answer_in_dispatch_never_becomes_a_second_call(
    case: Case, fake: FakeProviders, base_url: str, clean_db: str, redis_url: str
) -> None:
    agent_id = "wss://agent.example/relay" if case.name == "twilio" else "agt_test"
    spec = {
        "agent": {"name": "Agent", "provider_agent_id": agent_id, "phone_numbers": CALLER_IDS},
        "timezone": "America/New_York",
        "whatsapp_channel": None,
        "whatsapp_first_message": None,
    }
    campaign_id = setup_campaign(clean_db, spec, customers_csv(["+12125550101", "+12125550102"]))
    driver = make_driver(clean_db, redis_url, now=IN_WINDOW)
    start(clean_db, campaign_id, IN_WINDOW)
    relay(driver)
    with transaction(clean_db) as session:
        claimed = scan_campaign(session, campaign_id, IN_WINDOW, LEGAL, 10).claimed
    assert len(claimed) == 2

    adapter = _adapter(case, base_url)
    fake.slow_answers, fake.slow_seconds = 1, READ_TIMEOUT_SECONDS * 3
    reports = dispatch_batch(driver.uow, adapter, claimed, driver.clock, driver.limits)
    verdicts = sorted(report.verdict for report in reports)

    everything = attempts_of(clean_db, campaign_id)
    attempts = [a for a in everything if a.id in set(claimed)]
    keys = [attempt.idempotency_key for attempt in attempts]
    assert len(keys) == 2
    assert [fake.creates_by_key()[key] for key in keys] == [1, 1]
    if case.finds_lost_calls:
        assert verdicts == [Verdict.PLACED, Verdict.PLACED]
        for attempt in attempts:
            placed = fake.find(case.name, attempt.idempotency_key)
            assert placed is not None
            assert attempt.conv_id == placed.id
            # A call found by a lookup may already be further on (the fake's Retell one ended).
            assert attempt.status in ("in_progress", "completed")
        return
    assert verdicts == sorted([Verdict.PLACED, Verdict.UNCERTAIN])
    held = [a for a in attempts if a.status == "uncertain"]
    assert [a.provider_error_code for a in held] == ["placement_uncertain"]
    assert (held[0].finished_at, held[0].conv_id) == (None, None)
    assert len(everything) == 2  # no successor: a held call is not an unanswered one
    # The reaper or a re-delivered task sends the same attempts again: nothing leaves.
    again = dispatch_batch(driver.uow, adapter, claimed, driver.clock, driver.limits)
    assert {report.verdict for report in again} == {Verdict.NOT_QUEUED}
    assert [fake.creates_by_key()[key] for key in keys] == [1, 1]
