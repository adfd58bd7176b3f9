"""Beat high availability: two beats run, one leads; kill it and the standby takes over.

Real `celery beat` processes against real Redis, no worker: the scheduled tasks
pile up in the broker's queue lists, which shows who is scheduling. Waits poll
with a deadline.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from dialer.processes import process_group
from tasks.app import BEAT_LOCK_KEY
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.pipeline_support import MONDAY_8_UTC

LOCK_TIMEOUT_SECONDS = 3
# Lock expiry, one standby retry interval, the standby's first tick, and slack for a slow CI.
TAKEOVER_BOUND_SECONDS = LOCK_TIMEOUT_SECONDS + 1 + 1 + 5


def _leader(client: redis.Redis) -> str | None:
    token = client.get(BEAT_LOCK_KEY)
    return token if isinstance(token, str) else None


def _scans_sent(client: redis.Redis) -> int:
    return int(client.llen("scan"))


def test_a_standby_beat_takes_over_when_the_leader_is_killed(
    clean_db: str, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    client = redis_client
    run = fast_run(
        clean_db,
        redis_url,
        tmp_path,
        MONDAY_8_UTC,
        DIALER_BEAT_LOCK_TIMEOUT_SECONDS=str(LOCK_TIMEOUT_SECONDS),
        DIALER_SCAN_INTERVAL_SECONDS="0.5",
    )
    with process_group(run.env, run.log_dir) as group:
        first = group.beat("beat-a")
        wait_for(lambda: _leader(client) is not None, 30, "beat-a to take the lock", run.log_dir)
        first_token = _leader(client)
        second = group.beat("beat-b")
        wait_for(lambda: _scans_sent(client) >= 3, 15, "the leader to schedule", run.log_dir)
        assert _leader(client) == first_token  # the standby waits; it does not steal the lock
        assert second.poll() is None

        os.killpg(first.pid, signal.SIGKILL)  # no clean shutdown: the lock must expire
        first.wait()
        killed_at = time.monotonic()
        wait_for(
            lambda: _leader(client) not in (None, first_token),
            TAKEOVER_BOUND_SECONDS,
            "beat-b to take the lock",
            run.log_dir,
        )
        took_over_after = time.monotonic() - killed_at
        client.delete("scan")
        wait_for(lambda: _scans_sent(client) >= 2, 10, "beat-b to schedule", run.log_dir)

    assert took_over_after <= TAKEOVER_BOUND_SECONDS
    assert took_over_after >= LOCK_TIMEOUT_SECONDS - 2  # it waited for the lock to expire
