"""Each hosted provider end to end: its adapter against `dialer sandbox --flavor X`.

Real processes per flavour (Vapi, Retell, Twilio, ElevenLabs): the sandbox speaking
that provider's API, webhooks and signature scheme, `dialer api` verifying them,
a Celery worker and beat on a fast clock. The provider misbehaves: 5% 5xx, 2% 429,
2% dropped webhooks and lost placement answers (the call is placed, the answer
never arrives). The audit: every enrollment closes, and the sandbox's ledger shows
at most one provider call per attempt, every one of them an attempt of ours.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from sqlalchemy import select

from dialer.processes import process_group
from dialer.sandbox.connect import LOST_ANSWER_HOLD_SECONDS, agent_id_for, dialer_env
from models import CallAttempt, Enrollment, ProviderEvent
from models.session import transaction
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.loopback_support import free_port
from tests.integration.pipeline_support import (
    BASE_SPEC,
    MONDAY_6_UTC,
    campaign_status,
    customers_csv,
    rome_phone,
    setup_campaign,
    start,
)

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_SECONDS: Final = 150  # a bound under load; a run takes well under a minute
CUSTOMERS: Final = 20
# A loaded machine takes half a minute to import a process (the runs are bounded waits).
STARTUP_SECONDS: Final = 90
CALLER_IDS: Final = BASE_SPEC["agent"]["phone_numbers"]
FAULTS: Final = {
    "rate_5xx": 0.05,
    "rate_429": 0.02,
    "drop_webhook_rate": 0.02,
    "rate_lost_response": 0.06,
    "hang_seconds": LOST_ANSWER_HOLD_SECONDS,
    # Every fault at least once, whatever the draws: the first requests meet them.
    "scripted": ["5xx", "lost_response", "429"],
}
# Flavours whose adapter finds a call whose answer was lost, by our metadata.
FINDS_LOST_CALLS: Final = frozenset({"vapi", "retell", "elevenlabs"})


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _run(flavor: str, clean_db: str, redis_url: str, tmp_path: Path) -> tuple[Any, dict[str, Any]]:
    sandbox_port, api_port = free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    run = fast_run(
        clean_db,
        redis_url,
        tmp_path,
        MONDAY_6_UTC,
        DIALER_WHATSAPP_BASE_URL=sandbox,
        DIALER_SANDBOX_PORT=str(sandbox_port),
        DIALER_API_PORT=str(api_port),
        DIALER_PUBLIC_WEBHOOK_BASE_URL=f"http://127.0.0.1:{api_port}",
        # A real provider refuses the public sandbox secrets (test-only values).
        DIALER_WEBHOOK_SECRET="whsec_test_" + "w" * 24,
        DIALER_PROVIDER_API_KEY="sk_test_" + "k" * 24,
        DIALER_WHATSAPP_TOKEN="wa_test_" + "t" * 24,
        DIALER_WHATSAPP_APP_SECRET="meta_app_" + "a" * 24,
        DIALER_WHATSAPP_VERIFY_TOKEN="meta_verify_" + "v" * 24,
        # Real seconds: a call whose final webhook was dropped is reconciled after 3 s.
        DIALER_MAX_CALL_SECONDS="3",
        **dialer_env(flavor, sandbox, CALLER_IDS),
    )
    agent = {**BASE_SPEC["agent"], "provider_agent_id": agent_id_for(flavor, "agt_test")}
    csv = customers_csv([rome_phone(n) for n in range(CUSTOMERS)])
    # Calls only, retried soon: the run stays short (the WhatsApp fallback has its own test).
    spec = {
        "agent": agent,
        "call_attempt_delays": [30, 90],
        # Every day, the legal bound's hours: a slow start-up never runs into a weekend.
        "call_working_hours": {"start": "08:00", "end": "21:00", "weekdays": list(range(7))},
        "whatsapp_channel": None,
        "whatsapp_first_message": None,
    }
    campaign_id = setup_campaign(clean_db, spec, csv)
    with process_group(run.env, run.log_dir) as group:
        group.dialer("sandbox", ["sandbox", "--flavor", flavor, "--faults", json.dumps(FAULTS)])
        group.dialer("api", ["api"])
        wait_for(
            lambda: _up(f"{sandbox}/sandbox/health"), STARTUP_SECONDS, "the sandbox", run.log_dir
        )
        wait_for(
            lambda: _up(f"http://127.0.0.1:{api_port}/healthz"),
            STARTUP_SECONDS,
            "the api",
            run.log_dir,
        )
        group.worker(concurrency=2)
        group.beat()
        start(clean_db, campaign_id, run.now())
        try:
            wait_for(
                lambda: campaign_status(clean_db, campaign_id) == "done",
                RUN_TIMEOUT_SECONDS,
                "the campaign to finish",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_progress(clean_db, campaign_id)}") from None
        ledger = httpx.get(f"{sandbox}/sandbox/ledger", timeout=5).json()
    return campaign_id, ledger


def _progress(url: str, campaign_id: Any) -> str:
    """Where a run that did not finish stands (enrollments, attempts), for the failure."""
    with transaction(url) as session:
        states = Counter(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )
        attempts = Counter(
            (a.status, a.outcome, a.provider_error_code)
            for a in session.scalars(
                select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
            )
        )
    return f"enrollments {dict(states)}, attempts {dict(attempts)}"


@pytest.mark.parametrize("flavor", ["vapi", "retell", "twilio", "elevenlabs"])
def test_a_campaign_through_a_faulty_hosted_provider_places_at_most_one_call_per_attempt(
    flavor: str, clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    campaign_id, ledger = _run(flavor, clean_db, redis_url, tmp_path)

    with transaction(clean_db) as session:
        states = Counter(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )
        attempts = {
            attempt.idempotency_key: attempt
            for attempt in session.scalars(
                select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
            )
        }
        outcomes = Counter(a.outcome for a in attempts.values() if a.outcome)
        retried = [a for a in attempts.values() if (a.delivery_attempts or 0) > 1]
        webhook_events = session.scalar(
            select(ProviderEvent.id).where(ProviderEvent.provider == flavor).limit(1)
        )
        found_again = {
            key: (attempts[key].conv_id if key in attempts else None)
            for key in ledger["lost_response_keys"]
        }

    assert states["active"] == 0  # every enrollment closed
    assert sum(states.values()) == CUSTOMERS
    by_key = ledger["calls_by_key"]
    assert set(by_key) <= set(attempts)  # every call the provider placed is an attempt of ours
    assert set(by_key.values()) == {1}  # ...and no attempt was placed twice
    assert retried  # 5xx/429 were met and retried
    assert webhook_events is not None  # results came in through the provider's signed webhook
    assert ledger["webhooks"]["delivered"] > 0
    assert len(outcomes) >= 3, outcomes  # the status sequences map to several outcomes
    assert ledger["faults"].get("lost_response", 0) >= 1  # some placement answers were lost
    if flavor in FINDS_LOST_CALLS:
        # Each lost answer was resolved by finding the call by our metadata.
        placed = {entry["idempotency_key"]: entry["call_id"] for entry in ledger["calls"]}
        assert found_again == {key: placed[key] for key in found_again}
