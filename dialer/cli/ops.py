"""Operations commands of `dialer`: Flower (monitoring, Prometheus metrics) and two probes.

Registered on the main command by ``register_ops_commands`` so `dialer.cli.main` stays the
one entry point. Heavy imports (Celery, the app) happen inside the commands: probes
start this module often and must stay cheap.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from dialer.errors import SettingsError
from dialer.settings import Settings, get_settings

# Offline workers (a replaced pod, a stopped unit) leave Flower's list after this long.
PURGE_OFFLINE_WORKERS_SECONDS = 600
DEFAULT_PING_TIMEOUT_SECONDS = 10.0
# Celery's file scheduler rewrites its schedule every 3 minutes while it runs.
BEAT_SCHEDULE_MAX_AGE_SECONDS = 600.0
BEAT_SCHEDULE_GLOB = "celerybeat-schedule*"


def flower_credentials(settings: Settings) -> str:
    """``user:password`` for Flower's basic auth; SettingsError naming what is missing or bad.

    Flower reads several credentials as one comma-separated list and splits each at the
    first colon, so a comma anywhere or a colon in the user name cannot be represented.
    """
    user = settings.flower_user.strip()
    password = settings.flower_password.get_secret_value() if settings.flower_password else ""
    problems = []
    if not user:
        problems.append("DIALER_FLOWER_USER: must not be empty")
    elif ":" in user or "," in user:
        problems.append("DIALER_FLOWER_USER: must not contain ':' or ','")
    if not password:
        problems.append("DIALER_FLOWER_PASSWORD: must be set to start Flower (basic auth)")
    elif "," in password:
        problems.append("DIALER_FLOWER_PASSWORD: must not contain ',' (Flower splits on commas)")
    if problems:
        raise SettingsError("invalid settings: " + "; ".join(problems))
    return f"{user}:{password}"


def flower_argv(
    settings: Settings, *, host: str | None = None, port: int | None = None
) -> list[str]:
    """The `celery flower` arguments; the credentials travel in the environment, not in argv."""
    return [
        "flower",
        f"--address={host if host is not None else settings.flower_host}",
        f"--port={port or settings.flower_port}",
        f"--purge_offline_workers={PURGE_OFFLINE_WORKERS_SECONDS}",
    ]


def flower_cmd(
    host: Annotated[
        str | None, typer.Option(help="Listen address (default: settings.flower_host).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Listen port (default: settings.flower_port).")
    ] = None,
) -> None:
    """Serve Flower for the project's broker, with basic auth; Prometheus metrics on /metrics."""
    settings = get_settings()
    try:
        credentials = flower_credentials(settings)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    # Not on the command line, where `ps` would show it: Flower reads FLOWER_* variables.
    os.environ["FLOWER_BASIC_AUTH"] = credentials
    from tasks.app import app as celery_app

    celery_app.start(flower_argv(settings, host=host, port=port))


def worker_ping_cmd(
    node: Annotated[
        str | None, typer.Option(help="Worker node name (default: celery@<this host>).")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the answer.")
    ] = DEFAULT_PING_TIMEOUT_SECONDS,
) -> None:
    """Exit 0 when the worker NODE answers a ping through the broker (a liveness probe)."""
    target = node or f"celery@{socket.gethostname()}"
    try:
        answered = ping_worker(_broker_url(get_settings()), target, timeout)
    except Exception as exc:  # a probe reports (broker down, bad URL), it does not trace back
        typer.echo(f"error: cannot ping {target}: {exc}", err=True)
        raise typer.Exit(1) from None
    if not answered:
        typer.echo(f"error: worker {target} did not answer within {timeout}s", err=True)
        raise typer.Exit(1)
    typer.echo(f"{target}: pong")


def ping_worker(broker_url: str, node: str, timeout: float) -> bool:
    """Whether ``node`` answers Celery's ping broadcast within ``timeout`` seconds."""
    from celery import Celery

    probe = Celery("dialer-probe", broker=broker_url, set_as_current=False)
    try:
        # limit=1: return as soon as the one node answered instead of waiting out the timeout.
        replies = probe.control.ping(destination=[node], timeout=timeout, limit=1)
    finally:
        probe.close()
    return any(node in reply for reply in replies or [])


@dataclass(frozen=True)
class BeatStatus:
    """Whether beat is scheduling, and what that was read from."""

    ok: bool
    detail: str


def beat_check_cmd(
    max_age: Annotated[
        float, typer.Option(help="Oldest schedule file accepted, in seconds (file scheduler).")
    ] = BEAT_SCHEDULE_MAX_AGE_SECONDS,
) -> None:
    """Exit 0 when beat is scheduling: its leader lock is held, or its schedule file is fresh."""
    from tasks.app import app as celery_app

    status = beat_status(celery_app, get_settings(), max_age)
    if not status.ok:
        typer.echo(f"error: {status.detail}", err=True)
        raise typer.Exit(1)
    typer.echo(status.detail)


def beat_status(
    celery_app: Any, settings: Settings, max_age: float, now: Callable[[], float] = time.time
) -> BeatStatus:
    """Read the sign of life of whichever scheduler ``celery_app``'s beat is configured with."""
    if "redbeat" in str(celery_app.conf.beat_scheduler).lower():
        return _redbeat_lock(celery_app)
    return schedule_file_status(Path(settings.home), max_age, now())


def schedule_file_status(home: Path, max_age: float, now: float) -> BeatStatus:
    """Celery's file scheduler: the schedule under DIALER_HOME was rewritten recently."""
    files = list(home.glob(BEAT_SCHEDULE_GLOB))
    if not files:
        return BeatStatus(False, f"no beat schedule file in {home}")
    age = now - max(path.stat().st_mtime for path in files)
    return BeatStatus(age <= max_age, f"beat schedule file written {age:.0f}s ago")


def _redbeat_lock(celery_app: Any) -> BeatStatus:
    """RedBeat: a running leader renews its lock in Redis every loop; a dead one's expires."""
    import redis
    from redbeat.schedulers import RedBeatConfig

    config = RedBeatConfig(celery_app)
    client = redis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        held = bool(client.exists(config.lock_key))
    except redis.RedisError as exc:
        return BeatStatus(False, f"cannot read beat's lock {config.lock_key}: {exc}")
    finally:
        client.close()
    return BeatStatus(held, f"beat lock {config.lock_key} {'held' if held else 'not held'}")


def _broker_url(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    from dialer.embedded import ensure_services  # development: the embedded Redis

    return ensure_services(settings).redis_url


def register_ops_commands(app: typer.Typer) -> None:
    """Add `dialer flower`, `dialer worker-ping` and `dialer beat-check` to the main command."""
    app.command("flower")(flower_cmd)
    app.command("worker-ping")(worker_ping_cmd)
    app.command("beat-check")(beat_check_cmd)


if __name__ == "__main__":
    # `python -m dialer.cli.ops worker-ping`: the same commands without importing the whole
    # CLI (about a second less per run, which matters for a probe run every minute).
    ops = typer.Typer(no_args_is_help=True)
    register_ops_commands(ops)
    ops(prog_name="dialer")
