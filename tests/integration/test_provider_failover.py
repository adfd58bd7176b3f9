"""Several voice providers in one deployment, and failover, over loopback HTTP.

Real PostgreSQL (campaigns, claimed attempts), real Redis (the fleet's health record),
the project's dispatch service and a fleet of two hosted adapters, each talking to its
own fake provider server on 127.0.0.1 (tests/integration/fake_voice_providers.py), so
each fake's ledger is one provider's: "exactly one provider call per attempt" is the
sum over both.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from sqlalchemy import update

from dialer.policies.failover import FailoverRule
from dialer.providers.provider_health import RedisProviderHealth
from dialer.providers.voice_fleet import VoiceFleet
from dialer.sandbox.testing import serve_in_thread
from dialer.services.dispatch import Verdict, dispatch_batch
from models import CallAttempt
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
from tests.integration.test_voice_providers_loopback import CASES, KEYS, READ_TIMEOUT_SECONDS

pytestmark = pytest.mark.integration

IN_WINDOW = datetime(2026, 11, 23, 15, tzinfo=UTC)  # Monday 10:00 in New York
CALLER_IDS = ["+12125550199"]
RULE = FailoverRule(refusals=2, window_seconds=60, cooldown_seconds=30, probe_seconds=10)
MAKERS = {case.name: case.make for case in CASES}


class Fakes:
    """One fake provider server per provider name."""

    def __init__(self, names: list[str]) -> None:
        self.ledgers = {name: FakeProviders(api_keys=KEYS) for name in names}
        self.urls: dict[str, str] = {}

    def creates(self, key: str) -> dict[str, int]:
        return {name: fake.creates_by_key()[key] for name, fake in self.ledgers.items()}


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    fakes = Fakes(["vapi", "retell", "twilio"])
    with (
        serve_in_thread(fake_app(fakes.ledgers["vapi"])) as vapi_url,
        serve_in_thread(fake_app(fakes.ledgers["retell"])) as retell_url,
        serve_in_thread(fake_app(fakes.ledgers["twilio"])) as twilio_url,
    ):
        fakes.urls = {"vapi": vapi_url, "retell": retell_url, "twilio": twilio_url}
        yield fakes


@pytest.fixture
def clock() -> list[float]:
    return [1_000_000.0]  # the health record's Unix clock, moved by the tests


def _fleet(fakes: Fakes, redis_url: str, clock: list[float], default: str = "vapi") -> VoiceFleet:
    adapters: dict[str, Any] = {}
    for name, url in fakes.urls.items():
        adapter = MAKERS[name](url)
        settings = getattr(adapter, "_settings", None)
        if settings is not None and hasattr(settings, "phone_number_ids"):
            settings.phone_number_ids.update(dict.fromkeys(CALLER_IDS, "pn_test"))
        adapters[name] = adapter
    health = RedisProviderHealth(
        redis.Redis.from_url(redis_url), RULE, lambda: clock[0], namespace=uuid.uuid4().hex
    )
    return VoiceFleet(default, adapters, health)


def _campaign(url: str, agent: dict[str, Any], phones: list[str]) -> uuid.UUID:
    spec = {
        "name": f"campaign {agent['name']}",
        "agent": {**agent, "phone_numbers": CALLER_IDS},
        "concurrency": 10,
        "timezone": "America/New_York",
        "whatsapp_channel": None,
        "whatsapp_first_message": None,
    }
    return setup_campaign(url, spec, customers_csv(phones))


def _claimed(url: str, redis_url: str, campaign_id: uuid.UUID) -> tuple[Any, list[uuid.UUID]]:
    driver = make_driver(url, redis_url, now=IN_WINDOW)
    start(url, campaign_id, IN_WINDOW)
    relay(driver)
    with transaction(url) as session:
        claimed = scan_campaign(session, campaign_id, IN_WINDOW, LEGAL, 20).claimed
    return driver, sorted(claimed)


def _keys(url: str, campaign_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {a.id: a.idempotency_key for a in attempts_of(url, campaign_id) if a.id in set(ids)}


def _provider_of(url: str, campaign_id: uuid.UUID) -> dict[uuid.UUID, str | None]:
    return {a.id: a.provider for a in attempts_of(url, campaign_id)}


def _phones(count: int, start: int = 101) -> list[str]:
    return [f"+1212555{n:04d}" for n in range(start, start + count)]


def test_two_campaigns_in_one_deployment_use_their_agents_providers(
    fakes: Fakes, clean_db: str, redis_url: str, clock: list[float]
) -> None:
    on_vapi = _campaign(clean_db, {"name": "A", "provider_agent_id": "agt_v"}, _phones(2))
    on_retell = _campaign(
        clean_db,
        {"name": "B", "provider": "retell", "provider_agent_id": "agt_r"},
        _phones(2, 201),
    )
    driver, first = _claimed(clean_db, redis_url, on_vapi)
    _, second = _claimed(clean_db, redis_url, on_retell)
    fleet = _fleet(fakes, redis_url, clock)  # DIALER_PROVIDER=vapi: campaign A names none

    reports = dispatch_batch(driver.uow, fleet, first + second, driver.clock, driver.limits)

    assert {report.verdict for report in reports} == {Verdict.PLACED}
    for campaign_id, ids, name, agent_id in (
        (on_vapi, first, "vapi", "agt_v"),
        (on_retell, second, "retell", "agt_r"),
    ):
        for attempt_id, key in _keys(clean_db, campaign_id, ids).items():
            assert fakes.creates(key) == {"vapi": 0, "retell": 0, "twilio": 0, name: 1}
            call = fakes.ledgers[name].find(name, key)
            assert call is not None
            assert agent_id in str(call.body)
            assert _provider_of(clean_db, campaign_id)[attempt_id] == name


def test_refusals_past_the_threshold_send_new_placements_to_the_fallback_until_recovery(
    fakes: Fakes, clean_db: str, redis_url: str, clock: list[float]
) -> None:
    agent = {
        "name": "failing over",
        "provider_agent_id": "agt_primary",
        "fallback_provider": "retell",
        "fallback_provider_agent_id": "agt_fallback",
    }
    campaign_id = _campaign(clean_db, agent, _phones(8))
    driver, ids = _claimed(clean_db, redis_url, campaign_id)
    assert len(ids) == 8
    keys = _keys(clean_db, campaign_id, ids)
    fleet = _fleet(fakes, redis_url, clock)
    primary, fallback = fakes.ledgers["vapi"], fakes.ledgers["retell"]

    # 1. The primary refuses three placements (503, 429, 503): more than the threshold.
    primary.refusals[:] = [(503, {}), (429, {"Retry-After": "0"}), (503, {})]
    refused = dispatch_batch(driver.uow, fleet, ids[:3], driver.clock, driver.limits)
    assert {report.verdict for report in refused} == {Verdict.RETRY}
    assert all(fakes.creates(keys[i]) == {"vapi": 0, "retell": 0, "twilio": 0} for i in ids[:3])
    # Nothing was placed: the attempts are free to go elsewhere.
    assert [_provider_of(clean_db, campaign_id)[i] for i in ids[:3]] == [None] * 3

    # 2. The circuit is open: the refused ones and new ones go to the fallback, once each.
    moved = dispatch_batch(driver.uow, fleet, ids[:5], driver.clock, driver.limits)
    assert {report.verdict for report in moved} == {Verdict.PLACED}
    for attempt_id in ids[:5]:
        assert fakes.creates(keys[attempt_id]) == {"vapi": 0, "retell": 1, "twilio": 0}
        call = fallback.find("retell", keys[attempt_id])
        assert call is not None
        assert call.body["override_agent_id"] == "agt_fallback"
        assert _provider_of(clean_db, campaign_id)[attempt_id] == "retell"

    # 3. Cool-down over: one probe tries the primary, the rest of that batch the fallback.
    clock[0] += RULE.cooldown_seconds + 1
    probed = dispatch_batch(driver.uow, fleet, ids[5:7], driver.clock, driver.limits)
    assert {report.verdict for report in probed} == {Verdict.PLACED}
    assert sorted(_provider_of(clean_db, campaign_id)[i] or "" for i in ids[5:7]) == [
        "retell",
        "vapi",
    ]

    # 4. The probe succeeded: the primary takes new placements again.
    back = dispatch_batch(driver.uow, fleet, ids[7:], driver.clock, driver.limits)
    assert {report.verdict for report in back} == {Verdict.PLACED}
    assert _provider_of(clean_db, campaign_id)[ids[7]] == "vapi"
    assert primary.find("vapi", keys[ids[7]]) is not None
    # Exactly one provider call per attempt, over both providers.
    assert all(sum(fakes.creates(key).values()) == 1 for key in keys.values())


def test_a_refused_probe_keeps_the_fallback_for_another_cool_down(
    fakes: Fakes, clean_db: str, redis_url: str, clock: list[float]
) -> None:
    agent = {"name": "probe", "provider_agent_id": "agt_p", "fallback_provider": "retell"}
    campaign_id = _campaign(clean_db, agent, _phones(3))
    driver, ids = _claimed(clean_db, redis_url, campaign_id)
    fleet = _fleet(fakes, redis_url, clock)
    for _ in range(RULE.refusals + 1):
        fleet.health.refused("vapi")
    clock[0] += RULE.cooldown_seconds + 1
    fakes.ledgers["vapi"].refusals[:] = [(503, {})]

    probe = dispatch_batch(driver.uow, fleet, ids[:1], driver.clock, driver.limits)
    assert [report.verdict for report in probe] == [Verdict.RETRY]
    after = dispatch_batch(driver.uow, fleet, ids, driver.clock, driver.limits)

    assert {report.verdict for report in after} == {Verdict.PLACED}
    assert set(_provider_of(clean_db, campaign_id).values()) - {None} == {"retell"}


def test_a_lost_answer_is_never_sent_to_the_fallback(
    fakes: Fakes, clean_db: str, redis_url: str, clock: list[float]
) -> None:
    # Twilio keeps no metadata to find a call by: a lost answer is PlacementUncertain.
    agent = {
        "name": "lost",
        "provider": "twilio",
        "provider_agent_id": "wss://agent.example/relay",
        "fallback_provider": "retell",
        "fallback_provider_agent_id": "agt_r",
    }
    campaign_id = _campaign(clean_db, agent, _phones(1))
    driver, ids = _claimed(clean_db, redis_url, campaign_id)
    key = _keys(clean_db, campaign_id, ids)[ids[0]]
    fleet = _fleet(fakes, redis_url, clock)
    twilio = fakes.ledgers["twilio"]
    twilio.slow_answers, twilio.slow_seconds = 1, READ_TIMEOUT_SECONDS * 3

    dispatch_batch(driver.uow, fleet, ids, driver.clock, driver.limits)
    for _ in range(RULE.refusals + 1):  # the primary now refuses everything else
        fleet.health.refused("twilio")
    again = dispatch_batch(driver.uow, fleet, ids, driver.clock, driver.limits)

    assert {report.verdict for report in again} == {Verdict.NOT_QUEUED}
    assert fakes.creates(key) == {"vapi": 0, "retell": 0, "twilio": 1}
    assert _provider_of(clean_db, campaign_id)[ids[0]] == "twilio"


def test_a_re_sent_attempt_keeps_the_provider_it_was_sent_to(
    fakes: Fakes, clean_db: str, redis_url: str, clock: list[float]
) -> None:
    # A crash after the `dispatching` mark: whether the request left is unknown.
    agent = {"name": "crash", "provider_agent_id": "agt_c", "fallback_provider": "retell"}
    campaign_id = _campaign(clean_db, agent, _phones(1))
    driver, ids = _claimed(clean_db, redis_url, campaign_id)
    with transaction(clean_db) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == ids[0])
            .values(status="dispatching", provider="vapi", delivery_attempts=1)
        )
    fleet = _fleet(fakes, redis_url, clock)
    for _ in range(RULE.refusals + 1):
        fleet.health.refused("vapi")

    reports = dispatch_batch(driver.uow, fleet, ids, driver.clock, driver.limits)

    assert [report.verdict for report in reports] == [Verdict.PLACED]
    key = _keys(clean_db, campaign_id, ids)[ids[0]]
    assert fakes.creates(key) == {"vapi": 1, "retell": 0, "twilio": 0}


def test_a_refusal_after_an_uncertain_try_keeps_the_attempt_where_it_was(
    fakes: Fakes, clean_db: str, redis_url: str, clock: list[float]
) -> None:
    # An earlier try was sent to vapi and its answer lost (a timeout, requeued with the
    # key): a later 503 says nothing of that try, so the attempt must not move.
    agent = {"name": "pinned", "provider_agent_id": "agt_p", "fallback_provider": "retell"}
    campaign_id = _campaign(clean_db, agent, _phones(1))
    driver, ids = _claimed(clean_db, redis_url, campaign_id)
    with transaction(clean_db) as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == ids[0])
            .values(provider="vapi", delivery_attempts=1)
        )
    fleet = _fleet(fakes, redis_url, clock)
    fakes.ledgers["vapi"].refusals[:] = [(503, {})] * (RULE.refusals + 1)

    for _ in range(RULE.refusals + 1):  # refused until the circuit is open
        reports = dispatch_batch(driver.uow, fleet, ids, driver.clock, driver.limits)
        assert [report.verdict for report in reports] == [Verdict.RETRY]
        assert _provider_of(clean_db, campaign_id)[ids[0]] == "vapi"
    placed = dispatch_batch(driver.uow, fleet, ids, driver.clock, driver.limits)

    assert [report.verdict for report in placed] == [Verdict.PLACED]
    key = _keys(clean_db, campaign_id, ids)[ids[0]]
    assert fakes.creates(key) == {"vapi": 1, "retell": 0, "twilio": 0}
