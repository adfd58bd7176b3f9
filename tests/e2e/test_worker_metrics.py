"""A real prefork worker serves, on its metrics port, the sum of its pool processes."""

from __future__ import annotations

from pathlib import Path

from celery import Celery

from dialer.processes import process_group
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.loopback_support import free_port
from tests.integration.metrics_support import labelled, placed_in_db, scrape
from tests.integration.pipeline_support import MONDAY_6_UTC, campaign_status, setup_campaign


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
