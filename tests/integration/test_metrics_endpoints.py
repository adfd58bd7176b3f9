"""The Prometheus endpoints, scraped over loopback: numbers that match the database.

- The in-process pipeline records placements, outcomes and applied events as the
  database records them.
- `dialer api`'s endpoint adds the campaign gauges, read at scrape time.
- A real prefork worker serves the sum of its pool processes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from dialer import metrics
from dialer.api import serve_metrics
from dialer.processes import process_group
from dialer.settings import Settings
from models.session import transaction
from scheduler.scan import scan_campaign
from tests.integration.celery_support import fast_run, wait_for
from tests.integration.loopback_support import free_port
from tests.integration.pipeline_support import (
    LEGAL,
    MONDAY_6_UTC,
    MONDAY_8_UTC,
    attempts_of,
    campaign_status,
    make_driver,
    relay,
    rome_csv,
    run_to_done,
    setup_campaign,
    start,
    uow_for,
)

pytestmark = pytest.mark.integration
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (n, labels), value in samples.items() if n == name}


def placed_in_db(url: str, campaign_id: uuid.UUID) -> int:
    return sum(a.conv_id is not None for a in attempts_of(url, campaign_id))


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
def api_metrics_url(clean_db: str, base_settings: Settings) -> Iterator[str]:
    port = free_port()
    settings = base_settings.model_copy(
        update={"metrics_host": "127.0.0.1", "api_metrics_port": port}
    )
    server = serve_metrics(settings, uow_for(clean_db), lambda: MONDAY_8_UTC)
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


def test_a_prefork_worker_serves_the_sum_of_its_pool(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    run = fast_run(
        clean_db,
        redis_url,
        tmp_path,
        MONDAY_6_UTC,
        DIALER_WORKER_METRICS_PORT=str(port),
        DIALER_METRICS_HOST="127.0.0.1",
    )
    campaign_id = setup_campaign(clean_db)
    url = f"http://127.0.0.1:{port}/metrics"
    with process_group(run.env, run.log_dir) as group:
        group.worker(concurrency=2)
        group.beat()
        Celery(broker=redis_url).send_task(
            "dialer.campaign.start", args=[str(campaign_id)], queue="events"
        )
        wait_for(lambda: campaign_status(clean_db, campaign_id) == "done", 120, "done", run.log_dir)
        samples = scrape(url)
        pool_files = list((tmp_path / "metrics").glob("worker-*/*.db"))

    placed = labelled(samples, "dialer_calls_placed_total", "campaign_id")
    assert placed == {str(campaign_id): placed_in_db(clean_db, campaign_id)}
    assert samples[("dialer_scan_duration_seconds_count", ())] > 0
    assert sum(labelled(samples, "dialer_attempts_finished_total", "outcome").values()) > 0
    # Each pool process writes its own files, and the main process serves them all.
    pids = {path.stem.rsplit("_", 1)[-1] for path in pool_files}
    assert len(pids) >= 2, pool_files
    assert not list((tmp_path / "metrics").glob("worker-*")), "removed at shutdown"


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
