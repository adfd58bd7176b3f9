"""The embedded default for real: start, reuse, restart and stop servers in a tmp home.

URLs are passed as None explicitly, so these run the embedded servers even where CI
exports DIALER_DATABASE_URL / DIALER_REDIS_URL for the rest of the suite.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from dialer.embedded import ServiceUrls, ensure_services, services_status, stop_services
from dialer.errors import ServiceUnavailable
from dialer.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_settings(home: Path) -> Settings:
    return Settings(home=home, database_url=None, redis_url=None, _env_file=None)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    cfg = make_settings(tmp_path / "home")
    yield cfg
    stop_services(cfg)  # never leave servers behind, even when a test fails


def libpq_url(urls: ServiceUrls) -> str:
    return urls.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def select_one(urls: ServiceUrls) -> int:
    with psycopg.connect(libpq_url(urls), connect_timeout=3) as conn:
        row = conn.execute("select 1").fetchone()
    assert row is not None
    return int(row[0])


def postmasters_of(home: Path) -> list[int]:
    pgdata = str((home / "postgres").resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        info = proc.info
        alive = info["status"] != psutil.STATUS_ZOMBIE
        if info["name"] == "postgres" and alive and pgdata in (info["cmdline"] or []):
            found.append(proc.pid)
    return found


def test_starts_reuses_and_stops_both_servers(settings: Settings) -> None:
    urls = ensure_services(settings)

    assert urls.database_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    assert urls.database_url.endswith("/dialer")
    assert urls.redis_url.startswith("redis://127.0.0.1:")
    assert select_one(urls) == 1
    assert redis.Redis.from_url(urls.redis_url).ping() is True
    before = services_status(settings)
    assert before["postgres"]["running"]
    assert before["redis"]["running"]

    assert ensure_services(settings) == urls
    after = services_status(settings)
    assert after["postgres"]["pid"] == before["postgres"]["pid"], "no second PostgreSQL"
    assert after["redis"]["pid"] == before["redis"]["pid"], "no second Redis"

    stop_services(settings)

    with pytest.raises(psycopg.OperationalError):
        select_one(urls)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(urls.redis_url, socket_connect_timeout=2).ping()
    stop_services(settings)  # idempotent
    status = services_status(settings)
    assert not status["postgres"]["running"]
    assert not status["redis"]["running"]


def test_restart_keeps_ports_and_data(settings: Settings) -> None:
    urls = ensure_services(settings)
    with psycopg.connect(libpq_url(urls)) as conn:
        conn.execute("create table kept (id int)")
        conn.execute("insert into kept values (42)")
    redis.Redis.from_url(urls.redis_url).rpush("queued", "task-1")
    stop_services(settings)

    assert ensure_services(settings) == urls, "remembered ports are reused"
    with psycopg.connect(libpq_url(urls)) as conn:
        assert conn.execute("select id from kept").fetchall() == [(42,)]
    assert redis.Redis.from_url(urls.redis_url).lrange("queued", 0, -1) == [b"task-1"]


def test_a_taken_remembered_port_is_replaced(settings: Settings) -> None:
    urls = ensure_services(settings)
    stop_services(settings)
    redis_port = int(urls.redis_url.rsplit(":", 1)[1].split("/")[0])

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", redis_port))
        squatter.listen()
        moved = ensure_services(settings)

    assert moved.database_url == urls.database_url
    assert moved.redis_url != urls.redis_url
    assert redis.Redis.from_url(moved.redis_url).ping() is True


def test_processes_starting_at_once_share_one_server(settings: Settings) -> None:
    code = (
        "import sys\n"
        "from dialer.embedded import ensure_services\n"
        "from dialer.settings import Settings\n"
        "s = Settings(home=sys.argv[1], database_url=None, redis_url=None, _env_file=None)\n"
        "u = ensure_services(s)\n"
        "print('URLS', u.database_url, u.redis_url)\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(settings.home)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs

    urls = {line for out in outputs for line in out.splitlines() if line.startswith("URLS ")}
    assert len(urls) == 1, outputs
    assert len(postmasters_of(settings.home)) == 1
    mine = ensure_services(settings)
    assert urls == {f"URLS {mine.database_url} {mine.redis_url}"}


def test_a_foreign_data_folder_is_a_clear_error_not_data_loss(settings: Settings) -> None:
    pgdata = settings.home / "postgres"
    pgdata.mkdir(parents=True)
    (pgdata / "notes.txt").write_text("not PostgreSQL")

    with pytest.raises(ServiceUnavailable, match="not a PostgreSQL data folder"):
        ensure_services(settings)
    assert (pgdata / "notes.txt").read_text() == "not PostgreSQL"
