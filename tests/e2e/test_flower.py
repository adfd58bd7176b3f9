"""`dialer flower` against a real worker, and the worker and beat probes of dialer.cli.ops.

The integration tests start real processes (a Celery worker on a private queue, Flower
on a free port, beat) against the test PostgreSQL and Redis, and read them back through
Flower's HTTP API and the probe commands. Every wait polls with a deadline.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from celery import Celery

from dialer.cli.ops import (
    BEAT_SCHEDULE_MAX_AGE_SECONDS,
    beat_status,
    flower_argv,
    flower_credentials,
    schedule_file_status,
)
from dialer.errors import SettingsError
from dialer.processes import process_group
from dialer.settings import Settings, load_settings
from tests.e2e.celery_support import wait_for
from tests.integration.loopback_support import free_port

USER = "ops"
PASSWORD = "correct-horse-battery"  # test-only credential for the Flower started here
START_SECONDS = 90
TASK_SECONDS = 60
PROBE = [sys.executable, "-m", "dialer.cli.ops"]


# ---------------------------------------------------------------- pure parts


@pytest.fixture(autouse=True)
def _no_ambient_flower_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own DIALER_FLOWER_* variables must not change what these tests see."""
    for name in ("DIALER_FLOWER_USER", "DIALER_FLOWER_PASSWORD", "FLOWER_BASIC_AUTH"):
        monkeypatch.delenv(name, raising=False)


def _settings(**overrides: object) -> Settings:
    return load_settings(_env_file=None, **overrides)  # no .env file either


def test_flower_credentials_come_from_the_settings() -> None:
    settings = _settings(flower_user="ops", flower_password="s3cret")
    assert flower_credentials(settings) == "ops:s3cret"
    argv = flower_argv(settings, port=5999)
    assert "--port=5999" in argv
    assert not any("s3cret" in arg for arg in argv), "the password never goes on argv"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({}, "DIALER_FLOWER_PASSWORD"),
        ({"flower_password": ""}, "DIALER_FLOWER_PASSWORD"),
        ({"flower_password": "a,b"}, "DIALER_FLOWER_PASSWORD"),
        ({"flower_password": "x", "flower_user": " "}, "DIALER_FLOWER_USER"),
        ({"flower_password": "x", "flower_user": "a:b"}, "DIALER_FLOWER_USER"),
    ],
)
def test_flower_refuses_missing_or_unrepresentable_credentials(
    overrides: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        flower_credentials(_settings(**overrides))


def test_dialer_flower_does_not_start_without_a_password(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIALER_FLOWER", "FLOWER_"))}
    done = subprocess.run(
        [sys.executable, "-m", "dialer", "flower"],
        env={**env, "DIALER_HOME": str(tmp_path)},
        cwd=tmp_path,  # no .env file
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "DIALER_FLOWER_PASSWORD" in done.stderr


def test_schedule_file_status_reads_the_age_of_beats_file(tmp_path: Path) -> None:
    assert not schedule_file_status(tmp_path, 600, time.time()).ok
    schedule = tmp_path / "celerybeat-schedule.dat"
    schedule.write_bytes(b"")
    now = time.time()
    assert schedule_file_status(tmp_path, 600, now).ok
    os.utime(schedule, (now - 700, now - 700))
    stale = schedule_file_status(tmp_path, 600, now)
    assert not stale.ok
    assert "700s ago" in stale.detail


def test_beat_status_follows_the_configured_scheduler(tmp_path: Path) -> None:
    (tmp_path / "celerybeat-schedule").write_bytes(b"")
    settings = _settings(home=tmp_path)
    file_app = SimpleNamespace(
        conf=SimpleNamespace(beat_scheduler="celery.beat:PersistentScheduler")
    )
    assert beat_status(file_app, settings, BEAT_SCHEDULE_MAX_AGE_SECONDS).ok
    later = time.time() + BEAT_SCHEDULE_MAX_AGE_SECONDS + 60
    assert not beat_status(file_app, settings, BEAT_SCHEDULE_MAX_AGE_SECONDS, lambda: later).ok


# ---------------------------------------------------------------- real processes


def _env(database_url: str, redis_url: str, home: Path, **extra: str) -> dict[str, str]:
    return {
        "DIALER_DATABASE_URL": database_url,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_HOME": str(home),
        "DIALER_LOG_FORMAT": "json",
        "DIALER_SIMULATION_NAMESPACE": uuid.uuid4().hex,
        **extra,
    }


def _get(url: str, **kwargs: Any) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5, **kwargs)
    except httpx.TransportError:
        return None


def _answers(url: str) -> bool:
    response = _get(url)
    return response is not None and response.status_code == 200


def _online(base: str, node: str) -> bool:
    """Flower's event stream has seen ``node`` (its heartbeats reach Flower)."""
    response = _get(f"{base}/api/workers", params={"status": "true"}, auth=(USER, PASSWORD))
    return response is not None and response.status_code == 200 and response.json().get(node)


def _task(base: str, task_id: str) -> dict[str, Any]:
    response = _get(f"{base}/api/task/info/{task_id}", auth=(USER, PASSWORD))
    return response.json() if response is not None and response.status_code == 200 else {}


def _probe(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PROBE, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_flower_shows_a_real_worker_and_its_finished_task(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    name = f"flower-{uuid.uuid4().hex[:8]}"
    node = f"{name}@{socket.gethostname()}"
    queue = f"ops-{uuid.uuid4().hex[:8]}"  # private: no other test's task reaches this worker
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(
        database_url,
        redis_url,
        tmp_path,
        DIALER_FLOWER_USER=USER,
        DIALER_FLOWER_PASSWORD=PASSWORD,
    )
    logs = tmp_path / "logs"
    with process_group(env, logs) as group:
        group.worker(name, concurrency=1, queues=queue)
        group.dialer("flower", ["flower", "--host", "127.0.0.1", "--port", str(port)])
        wait_for(lambda: _answers(f"{base}/healthcheck"), START_SECONDS, "Flower to answer", logs)

        assert httpx.get(f"{base}/api/workers", timeout=5).status_code == 401
        wrong = httpx.get(f"{base}/api/workers", auth=(USER, "wrong"), timeout=5)
        assert wrong.status_code == 401

        wait_for(lambda: _online(base, node), START_SECONDS, f"Flower to see {node}", logs)
        workers = httpx.get(
            f"{base}/api/workers",
            params={"workername": node, "refresh": "true"},
            auth=(USER, PASSWORD),
            timeout=30,
        ).json()
        assert queue in {q["name"] for q in workers[node]["active_queues"]}

        sent = Celery(broker=redis_url).send_task("dialer.finish_campaigns", queue=queue)
        wait_for(
            lambda: _task(base, sent.id).get("state") == "SUCCESS",
            TASK_SECONDS,
            "the task to finish in Flower",
            logs,
        )
        info = _task(base, sent.id)
        assert info["name"] == "dialer.finish_campaigns"
        assert info["worker"] == node
        assert info["result"] == "0"  # no running campaign in the test database to finish
        listed = httpx.get(
            f"{base}/api/tasks", params={"workername": node}, auth=(USER, PASSWORD), timeout=5
        ).json()
        assert sent.id in listed

        metrics = httpx.get(f"{base}/metrics", timeout=5)  # Prometheus scrapes without auth
        assert metrics.status_code == 200
        succeeded = [
            line
            for line in metrics.text.splitlines()
            if line.startswith("flower_events_total{")
            and f'worker="{node}"' in line
            and 'type="task-succeeded"' in line
            and 'task="dialer.finish_campaigns"' in line
        ]
        assert succeeded
        assert float(succeeded[0].rsplit(" ", 1)[1]) >= 1

        ping = _probe(env, "worker-ping", "--node", node, "--timeout", "10")
        assert ping.returncode == 0, ping.stderr
        assert f"{node}: pong" in ping.stdout
        nobody = _probe(
            env, "worker-ping", "--node", f"nobody@{uuid.uuid4().hex}", "--timeout", "1"
        )
        assert nobody.returncode == 1
        assert "did not answer" in nobody.stderr


def test_beat_check_sees_a_running_beat(database_url: str, redis_url: str, tmp_path: Path) -> None:
    # The longest tick: beat sends its first round at start, then stays quiet.
    env = _env(database_url, redis_url, tmp_path, DIALER_SCAN_INTERVAL_SECONDS="60")
    logs = tmp_path / "logs"
    with process_group(env, logs) as group:
        group.dialer("beat", ["beat"])
        wait_for(
            lambda: _probe(env, "beat-check").returncode == 0,
            START_SECONDS,
            "beat-check to see the running beat",
            logs,
        )
        assert group.alive() == [True]
