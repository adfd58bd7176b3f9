"""Reconciliation over HTTP: calls whose webhooks never come are read back with GET /v1/calls."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from dialer.composition import AgentNumbers
from dialer.policies.status import is_terminal, map_provider_status
from dialer.policies.vocabulary import ProviderCallStatus
from dialer.providers.http_voice import HttpVoiceProvider
from dialer.sandbox.config import SandboxConfig
from dialer.sandbox.testing import running_sandbox
from dialer.services.dispatch import DispatchLimits, dispatch_batch
from models import CallAttempt, ProviderEvent
from models.session import transaction
from scheduler import ticks
from tests.integration.loopback_support import wait_until
from tests.integration.pipeline_support import (
    LEGAL,
    MONDAY_8_UTC,
    make_driver,
    relay,
    rome_csv,
    setup_campaign,
    start,
    uow_for,
)

NO_WEBHOOKS = SandboxConfig(api_key="sk_test", default_webhook_url=None, time_scale=100_000)


def test_calls_without_webhooks_are_reconciled_through_get_call(
    clean_db: str, redis_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 5}, rome_csv(3))
    start(clean_db, campaign_id, MONDAY_8_UTC)
    driver = make_driver(clean_db, redis_url, now=MONDAY_8_UTC)
    relay(driver)
    claimed: list[uuid.UUID] = []
    ticks.scan_all(driver.uow, MONDAY_8_UTC, LEGAL, 100, claimed.extend)
    uow = uow_for(clean_db)

    with running_sandbox(NO_WEBHOOKS) as url:
        provider = HttpVoiceProvider(url, "sk_test", AgentNumbers(uow))
        reports = dispatch_batch(
            uow, provider, claimed, lambda: MONDAY_8_UTC, DispatchLimits(LEGAL, 3)
        )
        calls = [report.detail for report in reports]
        assert len(calls) == 3

        def all_ended() -> bool:
            statuses = [ProviderCallStatus(provider.get_call(c).status) for c in calls]
            return all(is_terminal(map_provider_status(s)[0]) for s in statuses)

        wait_until(all_ended, 10, "the sandbox to end its calls")
        later = MONDAY_8_UTC + timedelta(hours=2)
        limits = ticks.ReapLimits(
            queued=timedelta(hours=1),
            dispatching=timedelta(hours=1),
            max_call=timedelta(minutes=30),
            inbox_retry_seconds=60,
        )
        counts = ticks.reap_all(uow, provider, later, limits, lambda _: None, lambda _: None)
        provider.close()

    assert counts["reconciled"] == 3
    with transaction(clean_db) as session:
        open_calls = session.scalar(
            select(func.count()).where(
                CallAttempt.campaign_id == campaign_id, CallAttempt.status == "in_progress"
            )
        )
        audited = session.scalar(
            select(func.count()).where(ProviderEvent.kind == "call.reconciled")
        )
    assert open_calls == 0
    assert audited == 3
