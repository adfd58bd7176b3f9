"""A campaign through the real channels: HTTP adapter -> sandbox provider -> signed webhooks
-> ingress -> inbox -> Celery, with the provider failing on purpose.

Real processes: `dialer sandbox` (10% 5xx, 5% 429, 2% dropped webhooks), `dialer api`,
a Celery worker and beat, on a fast shared clock.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select

from dialer.processes import process_group
from models import CallAttempt, Enrollment, Message, ProviderEvent
from models.session import transaction
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.loopback_support import free_port
from tests.integration.pipeline_support import (
    MONDAY_6_UTC,
    calls_outside_window,
    campaign_status,
    setup_campaign,
    start,
)

RUN_TIMEOUT_SECONDS = 120
FAULTS = {"rate_5xx": 0.10, "rate_429": 0.05, "drop_webhook_rate": 0.02}


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_campaign_through_a_faulty_provider_closes_everyone_with_one_call_per_attempt(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    sandbox_port, api_port = free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    run = fast_run(
        clean_db,
        redis_url,
        tmp_path,
        MONDAY_6_UTC,
        DIALER_PROVIDER="http",
        DIALER_PROVIDER_BASE_URL=sandbox,
        DIALER_WHATSAPP_BASE_URL=sandbox,
        DIALER_SANDBOX_PORT=str(sandbox_port),
        DIALER_API_PORT=str(api_port),
        DIALER_PUBLIC_WEBHOOK_BASE_URL=f"http://127.0.0.1:{api_port}",
        DIALER_PROVIDER_CALLS_PER_SECOND="50",
        # A real provider refuses the public sandbox secrets (test-only values).
        DIALER_WEBHOOK_SECRET="whsec_test_" + "w" * 24,
        DIALER_PROVIDER_API_KEY="sk_test_" + "k" * 24,
        DIALER_WHATSAPP_TOKEN="wa_test_" + "t" * 24,
        DIALER_WHATSAPP_APP_SECRET="meta_app_" + "s" * 24,
        DIALER_WHATSAPP_VERIFY_TOKEN="meta_verify_" + "v" * 24,
        # Real seconds: a call whose final webhook was dropped is reconciled after 3 s.
        DIALER_MAX_CALL_SECONDS="3",
    )
    campaign_id = setup_campaign(clean_db)
    with process_group(run.env, run.log_dir) as group:
        group.dialer("sandbox", ["sandbox", "--faults", json.dumps(FAULTS)])
        group.dialer("api", ["api"])
        wait_for(lambda: _up(f"{sandbox}/sandbox/health"), 30, "the sandbox", run.log_dir)
        wait_for(lambda: _up(f"http://127.0.0.1:{api_port}/healthz"), 30, "the api", run.log_dir)
        group.worker(concurrency=2)
        group.beat()
        start(clean_db, campaign_id, run.now())
        wait_for(
            lambda: campaign_status(clean_db, campaign_id) == "done",
            RUN_TIMEOUT_SECONDS,
            "the campaign to finish",
            run.log_dir,
        )
        ledger = httpx.get(f"{sandbox}/sandbox/ledger", timeout=5).json()

    with transaction(clean_db) as session:
        states = Counter(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )
        keys = set(
            session.scalars(
                select(CallAttempt.idempotency_key).where(
                    CallAttempt.campaign_id == campaign_id, CallAttempt.conv_id.is_not(None)
                )
            )
        )
        retried = session.scalar(
            select(CallAttempt.id).where(
                CallAttempt.campaign_id == campaign_id, CallAttempt.delivery_attempts > 1
            )
        )
        webhook_events = session.scalar(
            select(ProviderEvent.id).where(ProviderEvent.provider == "http").limit(1)
        )
        whatsapp_sent = session.scalar(
            select(Message.id).where(
                Message.campaign_id == campaign_id, Message.provider_message_id.is_not(None)
            )
        )
    assert states["active"] == 0  # everyone closed
    assert sum(states.values()) == 30
    assert calls_outside_window(clean_db, campaign_id) == []
    by_key = ledger["calls_by_key"]
    assert set(by_key) == keys  # every call the sandbox placed is an attempt of ours...
    assert set(by_key.values()) == {1}  # ...and exactly one call per attempt
    assert retried is not None  # the 5xx/429 faults were met and retried
    assert webhook_events is not None  # results came in through the signed ingress
    assert whatsapp_sent is not None  # the fallback went out through the WhatsApp adapter
