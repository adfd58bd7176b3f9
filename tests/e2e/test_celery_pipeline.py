"""Real Celery worker and beat processes against real PostgreSQL and Redis."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from celery import Celery
from sqlalchemy import func, select

from dialer.processes import process_group
from models import CallAttempt, Enrollment
from models.session import transaction
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.pipeline_support import (
    MONDAY_6_UTC,
    calls_outside_window,
    campaign_status,
    setup_campaign,
    start,
)

RUN_TIMEOUT_SECONDS = 120


def _states(url: str, campaign_id: object) -> Counter[str]:
    with transaction(url) as session:
        return Counter(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )


def test_a_start_message_runs_a_campaign_to_done(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    """Another service starts the campaign with the documented Celery message."""
    run = fast_run(clean_db, redis_url, tmp_path, MONDAY_6_UTC)
    campaign_id = setup_campaign(clean_db)
    with process_group(run.env, run.log_dir) as group:
        group.worker(concurrency=2)
        group.beat()
        broker = Celery(broker=redis_url)
        broker.send_task("dialer.campaign.start", args=[str(campaign_id)], queue="events")
        wait_for(
            lambda: campaign_status(clean_db, campaign_id) == "done",
            RUN_TIMEOUT_SECONDS,
            "the campaign to finish",
            run.log_dir,
        )
    states = _states(clean_db, campaign_id)
    assert sum(states.values()) == 30
    assert states["active"] == 0
    assert calls_outside_window(clean_db, campaign_id) == []
    ledger = run.voice().ledger_count_by_key()
    assert len(ledger) >= 30
    assert set(ledger.values()) == {1}


def test_two_beats_and_redelivered_dispatches_place_one_call_per_attempt(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    run = fast_run(clean_db, redis_url, tmp_path, MONDAY_6_UTC)
    campaign_id = setup_campaign(clean_db)
    broker = Celery(broker=redis_url)
    stop = threading.Event()

    def redeliver() -> None:
        """Deliver every claimed attempt's dispatch a second time, as a broker redelivery would."""
        sent: set[str] = set()
        while not stop.wait(0.3):
            with transaction(clean_db) as session:
                claimed = session.scalars(
                    select(CallAttempt.id).where(
                        CallAttempt.campaign_id == campaign_id, CallAttempt.queued_at.is_not(None)
                    )
                )
                fresh = [str(i) for i in claimed if str(i) not in sent]
            sent.update(fresh)
            for at in range(0, len(fresh), 10):
                broker.send_task("dialer.dispatch", args=[fresh[at : at + 10]], queue="dispatch")

    with process_group(run.env, run.log_dir) as group:
        # As deployed: dispatch has its own worker, so a dispatch backlog never starves the scan.
        group.worker("worker-dispatch", concurrency=1, queues="dispatch")
        group.worker("worker-main", concurrency=1, queues="scan,results,messages,events")
        group.beat("beat-a")
        group.beat("beat-b")
        start(clean_db, campaign_id, run.now())
        sender = threading.Thread(target=redeliver, daemon=True)
        sender.start()
        try:
            wait_for(
                lambda: campaign_status(clean_db, campaign_id) == "done",
                RUN_TIMEOUT_SECONDS,
                "the campaign to finish",
                run.log_dir,
            )
        finally:
            stop.set()
            sender.join()
    ledger = run.voice().ledger_count_by_key()
    with transaction(clean_db) as session:
        dispatched = session.scalar(
            select(func.count()).where(
                CallAttempt.campaign_id == campaign_id, CallAttempt.conv_id.is_not(None)
            )
        )
    assert len(ledger) == dispatched
    assert set(ledger.values()) == {1}
    assert _states(clean_db, campaign_id)["active"] == 0
