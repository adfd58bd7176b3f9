"""The window is checked before every provider request, not once per dispatch chunk.

An outside check found calls started after 21:00 local: 30 New York contacts claimed
at 20:59:50, dispatched in chunks of 10, each provider request taking 1.5 s. The
chunk was checked when it was locked, and the calls that went out in the last
seconds of the window rang after it had closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dialer.providers.base import CallRecord, PlaceCallRequest, ProviderEvent
from dialer.services.dispatch import Verdict, dispatch_batch
from models.session import transaction
from scheduler.driver import ManualClock
from scheduler.scan import scan_campaign
from tests.integration.pipeline_support import (
    LEGAL,
    attempts_of,
    customers_csv,
    make_driver,
    relay,
    setup_campaign,
    start,
)

# Monday 2026-11-23 20:59:50 in New York (EST, UTC-5); the legal bound ends at 21:00.
CLAIMED_AT = datetime(2026, 11, 24, 1, 59, 50, tzinfo=UTC)
CLOSING = datetime(2026, 11, 24, 2, tzinfo=UTC)
TUESDAY_OPENING = datetime(2026, 11, 24, 13, tzinfo=UTC)  # Tuesday 08:00 in New York
REQUEST_TAKES = timedelta(seconds=1.5)
MARGIN = timedelta(seconds=5)  # DispatchLimits' default window margin


@dataclass
class SlowProvider:
    """A VoiceProvider whose every place_call request takes 1.5 s on the manual clock."""

    clock: ManualClock
    name: str = "slow"
    sent: dict[str, datetime] = field(default_factory=dict)  # idempotency key -> sent at

    def place_call(self, request: PlaceCallRequest) -> CallRecord:
        self.sent[request.idempotency_key] = self.clock()
        self.clock.advance(REQUEST_TAKES)
        return CallRecord(id=f"call-{request.idempotency_key}", status="queued", to=request.to)

    def get_call(self, call_id: str) -> CallRecord:
        raise AssertionError(f"dispatch must not look calls up (asked for {call_id})")

    def parse_event(self, payload: Mapping[str, Any]) -> ProviderEvent:
        raise AssertionError("dispatch must not parse provider events")


def test_no_call_starts_within_the_margin_of_closing(clean_db: str, redis_url: str) -> None:
    new_york = customers_csv([f"+1212555{100 + n:04d}" for n in range(30)])
    spec = {
        "timezone": "America/New_York",
        "call_working_hours": {"start": "08:00", "end": "22:00"},  # the legal bound ends it
        "concurrency": 100,
        "whatsapp_channel": None,
        "whatsapp_first_message": None,
    }
    campaign_id = setup_campaign(clean_db, spec, new_york)
    driver = make_driver(clean_db, redis_url, now=CLAIMED_AT)
    start(clean_db, campaign_id, CLAIMED_AT)
    relay(driver)
    with transaction(clean_db) as session:
        claimed = scan_campaign(session, campaign_id, CLAIMED_AT, LEGAL, 500).claimed
    assert len(claimed) == 30
    tries_before = {a.id: a.delivery_attempts for a in attempts_of(clean_db, campaign_id)}

    provider = SlowProvider(driver.clock)
    reports = [
        report
        for chunk in (claimed[i : i + 10] for i in range(0, len(claimed), 10))
        for report in dispatch_batch(driver.uow, provider, chunk, driver.clock, driver.limits)
    ]

    latest_start = CLOSING - MARGIN
    assert provider.sent, "the first requests, well before closing, go out"
    assert all(at < latest_start for at in provider.sent.values()), provider.sent
    # 20:59:50, :51.5, :53, :54.5 go out; at :56 the call would ring within 5 s of 21:00.
    assert len(provider.sent) == 4
    verdicts = [r.verdict for r in reports]
    assert (verdicts.count(Verdict.PLACED), verdicts.count(Verdict.DEFERRED)) == (4, 26)
    for attempt in attempts_of(clean_db, campaign_id):
        if attempt.idempotency_key in provider.sent:
            assert (attempt.status, attempt.delivery_attempts) == ("in_progress", 1)
            assert attempt.evidence is not None
            assert attempt.evidence["zones"] == ["America/New_York"]
            continue
        assert attempt.evidence is None  # held back by the gate: no record of a dial
        assert attempt.status == "pending"
        assert attempt.scheduled_at == TUESDAY_OPENING
        assert attempt.delivery_attempts == tries_before[attempt.id]
        assert attempt.dispatched_at is None
        assert attempt.outcome is None
