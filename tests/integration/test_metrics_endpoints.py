"""The Prometheus endpoints, scraped over loopback: numbers that match the database.

- The in-process pipeline records placements, outcomes and applied events as the
  database records them.
- `dialer api`'s endpoint adds the campaign gauges, read at scrape time.

A real prefork worker serving the sum of its pool is tests/e2e/test_worker_metrics.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import text

from dialer import metrics
from dialer.api import serve_metrics
from dialer.composition.queues import QUEUES, UNACKED_KEY
from dialer.settings import Settings
from models.session import transaction
from models.vocabulary import ProviderEventStatus
from scheduler.scan import scan_campaign
from tests.integration.loopback_support import free_port
from tests.integration.metrics_support import labelled, placed_in_db, scrape
from tests.integration.pipeline_support import (
    LEGAL,
    MONDAY_8_UTC,
    attempts_of,
    make_driver,
    relay,
    rome_csv,
    run_to_done,
    setup_campaign,
    start,
    uow_for,
)


def test_the_pipeline_counts_what_the_database_records(clean_db: str, redis_url: str) -> None:
    campaign_id = setup_campaign(clean_db, {"whatsapp_channel": None}, rome_csv(20))
    driver = make_driver(clean_db, redis_url, {"answer_rate": 0.5}, MONDAY_8_UTC)
    outcomes = Counter(
        {o: metrics.sample("dialer_attempts_finished_total", {"outcome": o}) for o in OUTCOMES}
    )
    applied = metrics.sample("dialer_webhook_events_total", {"result": "applied"})
    scans = metrics.sample("dialer_scan_duration_seconds_count")

    start(clean_db, campaign_id, MONDAY_8_UTC)
    run_to_done(driver, clean_db, campaign_id, timedelta(minutes=10))

    attempts = attempts_of(clean_db, campaign_id)
    placed = metrics.sample("dialer_calls_placed_total", {"campaign_id": str(campaign_id)})
    assert placed == placed_in_db(clean_db, campaign_id) > 0
    finished = Counter(a.outcome for a in attempts if a.conv_id is not None)
    for outcome, count in finished.items():
        recorded = metrics.sample("dialer_attempts_finished_total", {"outcome": str(outcome)})
        assert recorded - outcomes[str(outcome)] == count, outcome
    assert metrics.sample("dialer_webhook_events_total", {"result": "applied"}) > applied
    assert metrics.sample("dialer_scan_duration_seconds_count") > scans


OUTCOMES = ("answered", "voicemail", "no_answer", "busy", "failed", "canceled")


@pytest.fixture
def api_metrics_url(clean_db: str, redis_url: str, base_settings: Settings) -> Iterator[str]:
    port = free_port()
    settings = base_settings.model_copy(
        update={"metrics_host": "127.0.0.1", "api_metrics_port": port}
    )
    server = serve_metrics(settings, uow_for(clean_db), lambda: MONDAY_8_UTC, redis_url)
    assert server is not None
    yield f"http://127.0.0.1:{port}/metrics"
    metrics.stop(server)


def test_the_api_endpoint_shows_each_running_campaign_load(
    clean_db: str, redis_url: str, api_metrics_url: str
) -> None:
    campaign_id = setup_campaign(clean_db, {"concurrency": 7}, rome_csv(12))
    idle_id = setup_campaign(clean_db, {}, rome_csv(3))  # a draft: no series
    driver = make_driver(clean_db, redis_url, now=MONDAY_8_UTC)
    start(clean_db, campaign_id, MONDAY_8_UTC)
    relay(driver)  # the first contacts: 12 pending attempts, due now

    before = scrape(api_metrics_url)
    key = str(campaign_id)
    assert labelled(before, "dialer_campaign_backlog", "campaign_id") == {key: 12}
    assert labelled(before, "dialer_campaign_calls_in_flight", "campaign_id") == {key: 0}
    assert labelled(before, "dialer_campaign_concurrency", "campaign_id") == {key: 7}

    with transaction(clean_db) as session:
        claimed = scan_campaign(session, campaign_id, MONDAY_8_UTC, LEGAL, 500).claimed
    after = scrape(api_metrics_url)
    assert 0 < len(claimed) <= 7  # the concurrency bounds the claim
    assert labelled(after, "dialer_campaign_backlog", "campaign_id") == {key: 12 - len(claimed)}
    assert labelled(after, "dialer_campaign_calls_in_flight", "campaign_id") == {key: len(claimed)}
    assert str(idle_id) not in labelled(after, "dialer_campaign_backlog", "campaign_id")


def test_the_api_endpoint_shows_the_celery_queue_lengths(
    redis_url: str, api_metrics_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete(*QUEUES, UNACKED_KEY)
    client.lpush("dispatch", *(f"message-{n}" for n in range(3)))
    client.lpush("results", "message")
    client.hset(UNACKED_KEY, "tag-1", "message")  # running on a worker, not yet acked
    body = scrape(api_metrics_url)
    lengths = labelled(body, "dialer_celery_queue_length", "queue")
    assert lengths == {"scan": 0, "dispatch": 3, "results": 1, "messages": 0, "events": 0}
    assert body[("dialer_celery_unacked_messages", ())] == 1
    client.delete(*QUEUES, UNACKED_KEY)


def test_a_metrics_endpoint_with_credentials_refuses_scrapes_without_them(
    base_settings: Settings,
) -> None:
    settings = base_settings.model_copy(
        update={
            "metrics_token": SecretStr("scrape-token-for-tests"),
            "metrics_user": "prometheus",
            "metrics_password": SecretStr("scrape-password-for-tests"),
        }
    )
    auth = metrics.MetricsAuth.from_settings(settings)
    assert auth is not None
    server = metrics.serve("127.0.0.1", free_port(), metrics.exposition_registry(), auth)
    assert server is not None
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        assert httpx.get(url, timeout=5).status_code == 401
        assert httpx.get(url, auth=("prometheus", "wrong"), timeout=5).status_code == 401
        wrong_token = {"Authorization": "Bearer not-the-token"}
        assert httpx.get(url, headers=wrong_token, timeout=5).status_code == 401
        token = {"Authorization": "Bearer scrape-token-for-tests"}
        assert httpx.get(url, headers=token, timeout=5).status_code == 200
        basic = httpx.get(url, auth=("prometheus", "scrape-password-for-tests"), timeout=5)
        assert basic.status_code == 200
        assert "dialer_" in basic.text
    finally:
        metrics.stop(server)


def test_without_credentials_the_metrics_endpoint_stays_open(base_settings: Settings) -> None:
    assert metrics.MetricsAuth.from_settings(base_settings) is None


def test_the_api_endpoint_shows_the_inbox_backlog_and_its_age(
    clean_db: str, api_metrics_url: str
) -> None:
    """Results stored but not applied: how many wait, and for how long (DB clock)."""
    empty = scrape(api_metrics_url)
    assert empty[("dialer_inbox_pending", ())] == 0
    assert empty[("dialer_inbox_lag_seconds", ())] == 0
    with transaction(clean_db) as session:
        session.execute(
            text(
                "INSERT INTO provider_events (id, provider, event_id, kind, payload, received_at)"
                " SELECT gen_random_uuid(), 'http', 'ev-' || n, 'call.status', '{}',"
                " now() - make_interval(secs => 100 * n) FROM generate_series(1, 3) AS n"
            )
        )
        session.execute(
            text("UPDATE provider_events SET status = :s WHERE event_id = 'ev-3'"),
            {"s": ProviderEventStatus.APPLIED.value},
        )
    waiting = scrape(api_metrics_url)
    assert waiting[("dialer_inbox_pending", ())] == 2
    assert 200 <= waiting[("dialer_inbox_lag_seconds", ())] < 260  # ev-2, not the applied ev-3
