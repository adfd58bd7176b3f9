"""A placement whose answer was lost is held `uncertain`, never re-sent, and settled by evidence.

Real PostgreSQL and Redis, the project's dispatch, reaper and ingress, and fakes of
the providers' HTTP shapes on loopback that create the call and then lose the
answer (the client times out). The adapters look nothing up after the loss here
(``lookup_delays_seconds=()``), so the attempt is held as it is when every lookup
misses; the ledger then must show exactly one call per attempt and per enrollment
while the hold is settled by a webhook, by a later lookup, or by the deadline.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import select

from dialer.providers import twilio_voice, vapi
from dialer.providers.hosted import HOSTED
from dialer.providers.voice_adapter import HostedVoiceAdapter
from dialer.sandbox.testing import serve_in_thread
from dialer.services.dispatch import Verdict, dispatch_batch
from dialer.services.inbox import apply_stored
from dialer.settings import Settings
from models import CallAttempt
from models import ProviderEvent as InboxRow
from models.session import transaction
from scheduler import ticks
from scheduler.driver import InProcessPipeline
from scheduler.scan import scan_campaign
from tests.integration.fake_voice_providers import FakeProviders, fake_app
from tests.integration.pipeline_support import (
    LEGAL,
    attempts_of,
    customers_csv,
    enrollments_of,
    make_driver,
    relay,
    setup_campaign,
    start,
)
from tests.integration.test_hosted_providers_ingress import (
    ENV,
    PATHS,
    PUBLIC_BASE_URL,
    SECRETS,
    serve,
)
from tests.integration.test_voice_providers_loopback import (
    CASES,
    KEYS,
    READ_TIMEOUT_SECONDS,
    Case,
)
from tests.voice_fixtures import TWILIO_CALLBACK, VAPI_END_OF_CALL

pytestmark = pytest.mark.integration

IN_WINDOW = datetime(2026, 11, 23, 15, tzinfo=UTC)  # Monday 10:00 in New York
CALLER_IDS = ["+12125550199"]
DEADLINE = timedelta(hours=3)
REAP = ticks.ReapLimits(
    queued=timedelta(minutes=2),
    dispatching=timedelta(minutes=2),
    max_call=timedelta(hours=1),
    inbox_retry_seconds=60,
    uncertain_deadline=DEADLINE,
)
# The providers that keep no idempotency key (Retell keeps ours: a lost answer is re-sent).
UNKEYED = {case.name: case for case in CASES if case.name != "retell"}
SEARCHABLE = ["vapi", "elevenlabs"]


@pytest.fixture(scope="module")
def fake() -> FakeProviders:
    return FakeProviders(api_keys=KEYS)


@pytest.fixture(scope="module")
def base_url(fake: FakeProviders) -> Iterator[str]:
    with serve_in_thread(fake_app(fake)) as url:
        yield url


@dataclass
class Held:
    driver: InProcessPipeline
    campaign_id: uuid.UUID
    attempt: CallAttempt
    adapter: HostedVoiceAdapter


def _hold_one(case: Case, fake: FakeProviders, base_url: str, db: str, redis_url: str) -> Held:
    """A campaign of two customers, concurrency 1; the first call's answer is lost."""
    agent_id = "wss://agent.example/relay" if case.name == "twilio" else "agt_test"
    spec = {
        "agent": {"name": "Agent", "provider_agent_id": agent_id, "phone_numbers": CALLER_IDS},
        "timezone": "America/New_York",
        "concurrency": 1,
        "whatsapp_channel": None,
        "whatsapp_first_message": None,
    }
    campaign_id = setup_campaign(db, spec, customers_csv(["+12125550101", "+12125550102"]))
    driver = make_driver(db, redis_url, now=IN_WINDOW)
    start(db, campaign_id, IN_WINDOW)
    relay(driver)
    with transaction(db) as session:
        claimed = scan_campaign(session, campaign_id, IN_WINDOW, LEGAL, 10).claimed
    assert len(claimed) == 1
    kw: dict[str, Any] = {} if case.name == "twilio" else {"lookup_delays_seconds": ()}
    adapter = case.make(base_url, **kw)
    settings = getattr(adapter, "_settings", None)
    if settings is not None and hasattr(settings, "phone_number_ids"):
        settings.phone_number_ids.update(dict.fromkeys(CALLER_IDS, "pn_test"))
    fake.slow_answers, fake.slow_seconds = 1, READ_TIMEOUT_SECONDS * 3
    [report] = dispatch_batch(driver.uow, adapter, claimed, driver.clock, driver.limits)
    assert report.verdict is Verdict.UNCERTAIN, report
    [attempt] = [a for a in attempts_of(db, campaign_id) if a.id == claimed[0]]
    return Held(driver, campaign_id, attempt, adapter)


def _attempt(db: str, attempt_id: uuid.UUID) -> CallAttempt:
    with transaction(db) as session:
        attempt = session.get(CallAttempt, attempt_id)
        assert attempt is not None
        session.expunge(attempt)
        return attempt


def _calls_of_enrollment(fake: FakeProviders, enrollment_id: uuid.UUID) -> int:
    """Calls the provider created for one person (keys are att:<enrollment>:<attempt no>)."""
    return sum(
        n for key, n in fake.creates_by_key().items() if key.startswith(f"att:{enrollment_id}:")
    )


def _reap(held: Held, at: datetime, resent: list[uuid.UUID]) -> dict[str, int]:
    counts = ticks.reap_all(held.driver.uow, held.adapter, at, REAP, resent.extend, lambda _: None)
    return dict(counts)


@pytest.mark.parametrize("name", sorted(UNKEYED))
def test_a_held_placement_holds_its_turn_and_is_never_sent_again(
    name: str, fake: FakeProviders, base_url: str, clean_db: str, redis_url: str
) -> None:
    held = _hold_one(UNKEYED[name], fake, base_url, clean_db, redis_url)
    attempt = held.attempt
    assert (attempt.status, attempt.conv_id, attempt.finished_at) == ("uncertain", None, None)
    assert attempt.provider_error_code == "placement_uncertain"
    assert [e.state for e in enrollments_of(clean_db, held.campaign_id)] == ["active", "active"]
    # It counts against concurrency like a call on the line: the second customer waits.
    with transaction(clean_db) as session:
        assert scan_campaign(session, held.campaign_id, IN_WINDOW, LEGAL, 10).claimed == []
    # A re-delivered dispatch task finds nothing to send.
    again = dispatch_batch(
        held.driver.uow, held.adapter, [attempt.id], held.driver.clock, held.driver.limits
    )
    assert [r.verdict for r in again] == [Verdict.NOT_QUEUED]
    # The reaper, long past the queued and dispatching timeouts, never re-sends it.
    assert fake.creates_by_key()[attempt.idempotency_key] == 1
    assert _calls_of_enrollment(fake, attempt.enrollment_id) == 1
    resent: list[uuid.UUID] = []
    if name in SEARCHABLE:  # make every lookup miss, so it stays held
        fake.calls[:] = [c for c in fake.calls if c.key != attempt.idempotency_key]
    calls_before = len(fake.calls)
    for minutes in (5, 30, 90):
        counts = _reap(held, IN_WINDOW + timedelta(minutes=minutes), resent)
        assert counts.get("uncertain_held", 0) <= 1
    assert resent == []
    after = _attempt(clean_db, attempt.id)
    assert after.status == "uncertain"
    assert after.next_check_at is not None
    assert after.next_check_at > IN_WINDOW
    assert len(fake.calls) == calls_before  # nothing was sent while it was held


@pytest.mark.parametrize("name", SEARCHABLE)
def test_reconciliation_finds_a_held_placement_by_our_metadata(
    name: str, fake: FakeProviders, base_url: str, clean_db: str, redis_url: str
) -> None:
    held = _hold_one(UNKEYED[name], fake, base_url, clean_db, redis_url)
    placed = fake.find(name, held.attempt.idempotency_key)
    assert placed is not None  # the provider did place it; only its answer was lost
    resent: list[uuid.UUID] = []
    counts = _reap(held, IN_WINDOW + timedelta(seconds=30), resent)
    assert counts["uncertain_found"] == 1
    assert resent == []
    after = _attempt(clean_db, held.attempt.id)
    assert after.conv_id == placed.id
    assert after.status in ("in_progress", "completed")
    assert fake.creates_by_key()[held.attempt.idempotency_key] == 1
    assert _calls_of_enrollment(fake, held.attempt.enrollment_id) == 1
    assert _reap(held, IN_WINDOW + timedelta(minutes=5), resent).get("uncertain_found", 0) == 0


@pytest.fixture
def hosted_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, env in ENV.items():
        for variable, value in env.items():
            monkeypatch.setenv(variable, value.format(secret=SECRETS[name]))


def _vapi_webhook(attempt: CallAttempt) -> tuple[str, bytes, dict[str, str]]:
    message = VAPI_END_OF_CALL["message"]
    ours = {"attempt_id": str(attempt.id), "dialer_idempotency_key": attempt.idempotency_key}
    call = {**message["call"], "id": "vapi-call-seen-by-webhook"}
    call["assistantOverrides"] = {**call["assistantOverrides"], "metadata": ours}
    body = json.dumps({"message": {**message, "call": call}}).encode()
    headers = vapi.sign(body, SECRETS["vapi"], time.time())
    return PATHS["vapi"], body, {**headers, "Content-Type": "application/json"}


def _twilio_webhook(attempt: CallAttempt) -> tuple[str, bytes, dict[str, str]]:
    """A status callback posted to the URL the adapter gave Twilio (our keys in its query)."""
    stamp = format_datetime(datetime.now(UTC), usegmt=True)
    form = {**TWILIO_CALLBACK, "CallSid": "CA-seen-by-webhook", "Timestamp": stamp}
    body = urlencode(form).encode()
    query = urlencode(
        {"dialer_idempotency_key": attempt.idempotency_key, "attempt_id": str(attempt.id)}
    )
    target = f"{PATHS['twilio']}?{query}"
    headers = twilio_voice.sign(PUBLIC_BASE_URL + target, body, SECRETS["twilio"])
    return target, body, {**headers, "Content-Type": "application/x-www-form-urlencoded"}


WEBHOOKS = {"vapi": _vapi_webhook, "twilio": _twilio_webhook}


@pytest.mark.parametrize("name", sorted(WEBHOOKS))
def test_a_webhook_naming_our_attempt_settles_a_held_placement(
    name: str,
    fake: FakeProviders,
    base_url: str,
    clean_db: str,
    redis_url: str,
    settings: Settings,
    hosted_env: None,
) -> None:
    held = _hold_one(UNKEYED[name], fake, base_url, clean_db, redis_url)
    target, body, headers = WEBHOOKS[name](held.attempt)
    enqueued: list[uuid.UUID] = []
    with serve(settings, clean_db, enqueued) as ingress, httpx.Client(timeout=5) as client:
        answer = client.post(ingress + target, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    with transaction(clean_db) as session:
        [row] = session.scalars(select(InboxRow)).all()
        assert row.attempt_id == held.attempt.id  # matched by our id, not by a call id
        spec = next(hosted for hosted in HOSTED if hosted.name == name)
        assert apply_stored(session, row.id, spec.first_event, IN_WINDOW) == "applied"
    after = _attempt(clean_db, held.attempt.id)
    assert after.status == "completed"
    assert after.conv_id in ("vapi-call-seen-by-webhook", "CA-seen-by-webhook")
    resent: list[uuid.UUID] = []
    counts = _reap(held, IN_WINDOW + DEADLINE, resent)
    assert (counts.get("uncertain_expired", 0), resent) == (0, [])
    assert fake.creates_by_key()[held.attempt.idempotency_key] == 1


@pytest.mark.parametrize("name", ["vapi", "twilio"])
def test_a_held_placement_with_no_trace_ends_at_the_deadline(
    name: str, fake: FakeProviders, base_url: str, clean_db: str, redis_url: str
) -> None:
    held = _hold_one(UNKEYED[name], fake, base_url, clean_db, redis_url)
    # The provider has no record of the call (the fake forgets it): it was never placed.
    fake.calls[:] = [c for c in fake.calls if c.key != held.attempt.idempotency_key]
    resent: list[uuid.UUID] = []
    assert (
        _reap(held, IN_WINDOW + DEADLINE - timedelta(minutes=1), resent).get("uncertain_expired", 0)
        == 0
    )
    assert _attempt(clean_db, held.attempt.id).status == "uncertain"
    counts = _reap(held, IN_WINDOW + DEADLINE, resent)
    assert counts["uncertain_expired"] == 1
    assert resent == []
    after = _attempt(clean_db, held.attempt.id)
    assert (after.status, after.outcome) == ("failed", "failed")
    assert after.last_error is not None
    assert "no webhook and no trace at the provider 3 h after sending" in after.last_error
    mine = [
        e for e in enrollments_of(clean_db, held.campaign_id) if e.id == held.attempt.enrollment_id
    ]
    later = [
        a
        for a in attempts_of(clean_db, held.campaign_id)
        if a.id != held.attempt.id and a.enrollment_id == held.attempt.enrollment_id
    ]
    if name == "vapi":  # the provider said "no such call": the retry plan applies
        assert [e.state for e in mine] == ["active"]
        assert [(a.attempt_no, a.status) for a in later] == [(2, "pending")]
        assert "retry plan applies" in after.last_error
    else:  # Twilio cannot be searched: nothing proves the call was not placed
        assert [e.state for e in mine] == ["failed"]
        assert later == []
        assert "no retry" in after.last_error
