"""A worker that ends without a stop signal exits non-zero, so supervisors restart it.

Celery exits with ``WorkController.exitcode``, None (status 0) on ends nobody asked
for (issue 14: after a kombu ``restore_unacked`` error, after a pool child killed at
start-up). A remote shutdown ends a real worker the same way, without a signal:
it must exit non-zero now; SIGTERM, a requested stop, still exits 0.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from celery import Celery

from dialer.cli.ops import ping_worker
from dialer.processes import ProcessGroup
from tasks.exit_status import EX_SOFTWARE
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.pipeline_support import MONDAY_6_UTC

EXIT_TIMEOUT_SECONDS = 60
START_TIMEOUT_SECONDS = 120


def _pings(redis_url: str, node: str) -> bool:
    return ping_worker(redis_url, node, timeout=1.0)


def _shut_down(redis_url: str, node: str) -> None:
    # An app of its own on the test's broker: ``app.control`` publishes through the
    # producer pool of ``app``'s configured broker even when given another connection,
    # so with DIALER_REDIS_URL on another db the broadcast never reached the worker.
    probe = Celery("exit-status-probe", broker=redis_url, set_as_current=False)
    try:
        probe.control.shutdown(destination=[node])
    finally:
        probe.close()


def test_a_worker_shut_down_without_a_signal_exits_non_zero(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    run = fast_run(clean_db, redis_url, tmp_path, MONDAY_6_UTC)
    group = ProcessGroup(env=run.env, log_dir=run.log_dir, restart=False)
    try:
        worker = group.worker("exit-status", concurrency=1)
        node = f"exit-status@{socket.gethostname()}"
        wait_for(
            lambda: _pings(redis_url, node),
            START_TIMEOUT_SECONDS,
            "the worker to answer",
            run.log_dir,
        )
        _shut_down(redis_url, node)
        assert worker.wait(timeout=EXIT_TIMEOUT_SECONDS) == EX_SOFTWARE

        again = group.worker("exit-status-2", concurrency=1)
        node = f"exit-status-2@{socket.gethostname()}"
        wait_for(
            lambda: _pings(redis_url, node), START_TIMEOUT_SECONDS, "the second worker", run.log_dir
        )
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=EXIT_TIMEOUT_SECONDS) == 0  # asked to stop: a success
    finally:
        group.stop()
