"""The entry: ensure, stop and describe the embedded servers of a home folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dialer.embedded.home import HomePaths, home_lock
from dialer.embedded.ports import listening_port
from dialer.embedded.postgres import ensure_postgres, running_postmaster, stop_postgres
from dialer.embedded.redis_server import ensure_redis, running_redis_pid, stop_redis
from dialer.embedded.state import ServerState, load_state, save_state
from dialer.embedded.urls import ServiceUrls, postgres_url, redact_url, redis_url
from dialer.errors import ServiceUnavailable
from dialer.settings import Settings


def ensure_services(settings: Settings) -> ServiceUrls:
    """Return the URLs to use, starting or reusing embedded servers where none is configured.

    A configured URL is returned unchanged (an empty string counts as unset). Otherwise
    the embedded server for ``settings.home`` is reused when it is running (started by
    an earlier call or by another process) and started when it is not.

    Raises ServiceUnavailable naming the server and its log file when one cannot start.
    """
    database_url = settings.database_url or None
    broker_url = settings.redis_url or None
    if database_url is not None and broker_url is not None:
        return ServiceUrls(database_url=database_url, redis_url=broker_url)

    paths = HomePaths.for_settings(settings)
    paths.home.mkdir(parents=True, exist_ok=True)
    with home_lock(paths):
        state = load_state(paths.state)
        if database_url is None:
            state.postgres = ensure_postgres(paths, state.postgres.port)
            database_url = postgres_url(_known_port(state.postgres))
        if broker_url is None:
            state.redis = ensure_redis(paths, state.redis.port)
            broker_url = redis_url(_known_port(state.redis))
        save_state(paths.state, state)
    return ServiceUrls(database_url=database_url, redis_url=broker_url)


def stop_services(settings: Settings) -> None:
    """Stop the embedded servers of ``settings.home`` that are running. Idempotent.

    Configured URLs are ignored: an embedded server started earlier is still ours to stop.
    The remembered ports are kept, so the next start reuses them.
    """
    paths = HomePaths.for_settings(settings)
    if not paths.home.is_dir():
        return
    errors: list[ServiceUnavailable] = []
    with home_lock(paths):
        state = load_state(paths.state)
        # Try both even if the first fails: one stuck server must not keep the other up.
        for stop, server in ((stop_postgres, state.postgres), (stop_redis, state.redis)):
            try:
                stop(paths)
                server.pid = None
            except ServiceUnavailable as exc:
                errors.append(exc)
        if paths.state.exists():
            save_state(paths.state, state)
    if errors:
        raise ServiceUnavailable("; ".join(str(exc) for exc in errors))


def services_status(settings: Settings) -> dict[str, Any]:
    """What ``dialer services status`` shows. Starts nothing, creates nothing.

    For each of ``postgres`` and ``redis``: ``mode`` is ``configured`` or ``embedded``;
    ``url`` is what processes use (password redacted; None when embedded and stopped);
    ``running``/``pid``/``port`` describe the embedded server of this home (which may run
    even when a URL is configured, until ``services stop``); ``data_dir``/``log`` are paths.
    """
    paths = HomePaths.for_settings(settings)
    state = load_state(paths.state)

    postmaster = running_postmaster(paths.pgdata)
    pg_port = postmaster.port if postmaster else state.postgres.port
    redis_pid = running_redis_pid(paths)
    redis_port = state.redis.port
    if redis_pid is not None:
        redis_port = listening_port(redis_pid) or redis_port

    return {
        "home": str(paths.home),
        "postgres": _status_entry(
            configured=settings.database_url or None,
            running=postmaster is not None,
            pid=postmaster.pid if postmaster else None,
            port=pg_port,
            embedded_url=postgres_url(pg_port) if postmaster and pg_port else None,
            data_dir=paths.pgdata,
            log_file=paths.postgres_log,
        ),
        "redis": _status_entry(
            configured=settings.redis_url or None,
            running=redis_pid is not None,
            pid=redis_pid,
            port=redis_port,
            embedded_url=redis_url(redis_port) if redis_pid and redis_port else None,
            data_dir=paths.redis_dir,
            log_file=paths.redis_log,
        ),
    }


def _status_entry(
    *,
    configured: str | None,
    running: bool,
    pid: int | None,
    port: int | None,
    embedded_url: str | None,
    data_dir: Path,
    log_file: Path,
) -> dict[str, Any]:
    return {
        "mode": "configured" if configured else "embedded",
        "url": redact_url(configured) if configured else embedded_url,
        "running": running,
        "pid": pid,
        "port": port,
        "data_dir": str(data_dir),
        "log": str(log_file),
    }


def _known_port(server: ServerState) -> int:
    if server.port is None:  # ensure_postgres/ensure_redis always return one; this guards the type
        raise ServiceUnavailable("embedded server started without a known port")
    return server.port
