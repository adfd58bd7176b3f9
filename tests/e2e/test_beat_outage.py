"""Beat stays up through a Redis outage and leads again after it (issue 14, item 10e).

A private `redis-server` on a free port (never the shared one: this test kills it),
started without an append-only file, so the restarted Redis has lost the beat lock
and the schedule: the harder case. One real `celery beat`, not restarted by the
process group, so an exit shows as an exit.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dialer.processes import ProcessGroup
from tasks.app import BEAT_LOCK_KEY
from tests.e2e.celery_support import fast_run, wait_for
from tests.integration.pipeline_support import MONDAY_8_UTC

OUTAGE_SECONDS = 4.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.port, self.directory = _free_port(), directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.directory), "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        wait_for(lambda: self._pings(), 10, "the private redis-server")

    def _pings(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url).ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is needed on PATH for the outage test")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


def test_beat_rides_out_a_redis_restart_that_lost_its_lock(
    clean_db: str, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    run = fast_run(
        clean_db,
        private_redis.url,
        tmp_path,
        MONDAY_8_UTC,
        DIALER_BEAT_LOCK_TIMEOUT_SECONDS="3",
        DIALER_SCAN_INTERVAL_SECONDS="0.5",
    )
    client = redis.Redis.from_url(private_redis.url)
    group = ProcessGroup(env=run.env, log_dir=run.log_dir, restart=False)
    try:
        beat = group.beat("beat")
        wait_for(lambda: client.get(BEAT_LOCK_KEY) is not None, 30, "the lock", run.log_dir)
        wait_for(lambda: client.llen("scan") >= 2, 15, "the first scans", run.log_dir)

        private_redis.kill()
        time.sleep(OUTAGE_SECONDS)
        assert beat.poll() is None, "beat exited during the outage"
        private_redis.start()  # empty: no lock, no schedule, no queues

        wait_for(lambda: client.get(BEAT_LOCK_KEY) is not None, 30, "the lock again", run.log_dir)
        wait_for(lambda: client.llen("scan") >= 2, 30, "scans again", run.log_dir)
        assert beat.poll() is None
    finally:
        group.stop()
