"""SIGTERM on a real worker: it stops taking tasks, hands back what it held, loses nothing.

A campaign runs on worker A; A gets SIGTERM while attempts are in flight and must
exit on its own (warm shutdown: the task in hand finishes, unstarted messages go
back to the broker because acks are late). Worker B then carries the campaign to
done: every enrollment closed, every attempt's call placed exactly once.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from dialer.processes import process_group
from models import CallAttempt, Enrollment
from models.session import transaction
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.pipeline_support import MONDAY_6_UTC, campaign_status, setup_campaign, start

RUN_TIMEOUT_SECONDS = 120
WARM_SHUTDOWN_SECONDS = 30


def _claimed(url: str, campaign_id: object) -> int:
    with transaction(url) as session:
        ids = session.scalars(
            select(CallAttempt.id).where(
                CallAttempt.campaign_id == campaign_id, CallAttempt.queued_at.is_not(None)
            )
        )
        return len(list(ids))


def test_a_worker_stopped_with_sigterm_loses_no_work(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    run = fast_run(clean_db, redis_url, tmp_path, MONDAY_6_UTC)
    campaign_id = setup_campaign(clean_db)
    with process_group(run.env, run.log_dir) as group:
        worker_a = group.worker("worker-a", concurrency=1)
        group.beat()
        start(clean_db, campaign_id, run.now())
        wait_for(lambda: _claimed(clean_db, campaign_id) >= 5, 60, "claims", run.log_dir)

        worker_a.send_signal(signal.SIGTERM)
        exit_code = worker_a.wait(timeout=WARM_SHUTDOWN_SECONDS)
        assert campaign_status(clean_db, campaign_id) == "running"  # work was left to hand back

        group.worker("worker-b", concurrency=1)
        wait_for(
            lambda: campaign_status(clean_db, campaign_id) == "done",
            RUN_TIMEOUT_SECONDS,
            "worker-b to finish the campaign",
            run.log_dir,
        )

    assert exit_code == 0  # a warm shutdown, not a crash
    with transaction(clean_db) as session:
        states = Counter(
            session.scalars(select(Enrollment.state).where(Enrollment.campaign_id == campaign_id))
        )
        stuck = session.scalars(
            select(CallAttempt.status).where(
                CallAttempt.campaign_id == campaign_id,
                CallAttempt.status.in_(("queued", "dispatching", "in_progress")),
            )
        ).all()
    assert sum(states.values()) == 30
    assert states["active"] == 0
    assert stuck == []
    ledger = run.voice().ledger_count_by_key()
    assert set(ledger.values()) == {1}  # nothing placed twice across the hand-over
