"""The embedded PostgreSQL, found by its postmaster.pid: initdb once, start, create the database."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import structlog
from psycopg import sql

from dialer.embedded.binaries import postgres_bin
from dialer.embedded.home import HomePaths
from dialer.embedded.logs import failure, log_offset, log_since
from dialer.embedded.pids import STOP_TIMEOUT_S, process_alive, read_pid, wait_gone
from dialer.embedded.ports import PORT_ATTEMPTS, choose_port
from dialer.embedded.root import (
    RunAs,
    give_to,
    grant_traverse,
    open_postgres_install,
    postgres_run_as,
)
from dialer.embedded.state import ServerState, positive_int
from dialer.embedded.urls import DATABASE_NAME, HOST, POSTGRES_SUPERUSER
from dialer.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

INITDB_TIMEOUT_S = 120.0
POSTGRES_START_TIMEOUT_S = 60


# Passed on every start (not written into postgresql.conf) so a code change applies to
# existing data folders and the port can change when the remembered one is taken.
# unix_socket_directories='' turns sockets off: we only use TCP, and a socket path
# under a deep home folder can exceed the 107-byte limit for socket names.
POSTGRES_OPTIONS = (
    f"-c listen_addresses={HOST} -c max_connections=200 -c shared_buffers=128MB"
    " -c unix_socket_directories=''"
)


# C locale: same sort order on every machine, and no dependence on installed OS locales.
INITDB_OPTIONS = (
    f"--username={POSTGRES_SUPERUSER}",
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--no-instructions",
)


@dataclass(frozen=True)
class Postmaster:
    pid: int
    port: int


def running_postmaster(pgdata: Path) -> Postmaster | None:
    """The server running on ``pgdata``, from its postmaster.pid (the source of truth)."""
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return None
    pid = positive_int(int(lines[0])) if lines and lines[0].strip().isdigit() else None
    if pid is None or not _is_postmaster_of(pid, pgdata):
        return None
    port = positive_int(int(lines[3])) if len(lines) > 3 and lines[3].strip().isdigit() else None
    if port is None:
        return None
    return Postmaster(pid=pid, port=port)


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Is ``pid`` a postgres process serving ``pgdata``? (pids get reused after a reboot.)"""
    proc = process_alive(pid)
    if proc is None:
        return False
    try:
        if proc.name() != "postgres":
            return False
        return str(pgdata) in proc.cmdline()
    except psutil.AccessDenied:
        return True  # a postgres we may not inspect: trust the pid file
    except psutil.Error:
        return False


def ensure_postgres(paths: HomePaths, remembered_port: int | None) -> ServerState:
    running = running_postmaster(paths.pgdata)
    if running is None:
        run_as = postgres_run_as()
        _prepare_postgres_files(paths, run_as)
        _initdb_if_needed(paths, run_as)
        running = _start_postgres(paths, run_as, remembered_port)
    _ensure_database(paths, running.port)
    return ServerState(port=running.port, pid=running.pid)


def _prepare_postgres_files(paths: HomePaths, run_as: RunAs | None) -> None:
    """As root: give the postgres account its log file and a way to reach its folders."""
    paths.postgres_log.touch(exist_ok=True)
    if run_as is None:
        return
    open_postgres_install()
    grant_traverse(paths.pgdata)
    give_to(run_as, paths.postgres_log)


def _initdb_if_needed(paths: HomePaths, run_as: RunAs | None) -> None:
    """Create PGDATA once. initdb runs in a side folder that is renamed when complete,
    so an interrupted initdb never leaves a half-made PGDATA behind."""
    if (paths.pgdata / "PG_VERSION").exists():
        return
    if paths.pgdata.exists():
        if any(paths.pgdata.iterdir()):
            raise ServiceUnavailable(
                f"{paths.pgdata} exists but is not a PostgreSQL data folder; "
                "move it away so the embedded server can create a new one"
            )
        paths.pgdata.rmdir()
    shutil.rmtree(paths.pgdata_initdb, ignore_errors=True)
    paths.pgdata_initdb.mkdir(mode=0o700)
    give_to(run_as, paths.pgdata_initdb)

    offset = log_offset(paths.postgres_log)
    started = time.monotonic()
    code = _run_postgres_tool(
        run_as,
        ["initdb", "-D", str(paths.pgdata_initdb), *INITDB_OPTIONS],
        log_file=paths.postgres_log,
        timeout=INITDB_TIMEOUT_S,
        cwd=paths.pgdata_initdb,
    )
    if code != 0:
        shutil.rmtree(paths.pgdata_initdb, ignore_errors=True)
        what = "timed out" if code == -1 else f"failed (exit {code})"
        raise failure(f"embedded PostgreSQL: initdb {what}", paths.postgres_log, offset)
    paths.pgdata_initdb.rename(paths.pgdata)
    log.info("embedded_postgres_initialised", seconds=round(time.monotonic() - started, 2))


def _start_postgres(paths: HomePaths, run_as: RunAs | None, remembered: int | None) -> Postmaster:
    if run_as is not None:
        # A pytest or CI cleanup may have reset folder modes since the last start.
        grant_traverse(paths.pgdata)
    _remove_reused_pidfile(paths.pgdata)
    port = remembered
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = choose_port(port)
        offset = log_offset(paths.postgres_log)
        started = time.monotonic()
        code = _run_postgres_tool(
            run_as,
            [
                "pg_ctl",
                "-D",
                str(paths.pgdata),
                "-l",
                str(paths.postgres_log),
                "-w",
                "-t",
                str(POSTGRES_START_TIMEOUT_S),
                "-o",
                f"-p {port} {POSTGRES_OPTIONS}",
                "start",
            ],
            log_file=paths.postgres_log,
            timeout=POSTGRES_START_TIMEOUT_S + 10,
            cwd=paths.pgdata,
        )
        running = running_postmaster(paths.pgdata) if code == 0 else None
        if running is not None:
            log.info(
                "embedded_postgres_started",
                port=running.port,
                seconds=round(time.monotonic() - started, 2),
            )
            return running
        output = log_since(paths.postgres_log, offset)
        if "Address already in use" in output and attempt < PORT_ATTEMPTS:
            port = None  # someone took it between our check and the bind: pick another
            continue
        what = "timed out" if code == -1 else f"failed (pg_ctl exit {code})"
        raise failure(
            f"embedded PostgreSQL on {HOST}:{port} did not start: {what}",
            paths.postgres_log,
            offset,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _remove_reused_pidfile(pgdata: Path) -> None:
    """Drop a postmaster.pid whose pid now belongs to an unrelated live process.

    After a reboot or container restart the old pid is often reused, and postgres then
    refuses to start ("Is another postmaster running?"). A pid file whose process is
    dead is left alone: postgres checks it itself, including for orphaned backends
    still attached to the old shared memory, which must not be bypassed.
    """
    pidfile = pgdata / "postmaster.pid"
    pid = read_pid(pidfile)
    if pid is not None and process_alive(pid) is not None and not _is_postmaster_of(pid, pgdata):
        log.warning("embedded_postgres_stale_pidfile", pid=pid, path=str(pidfile))
        pidfile.unlink(missing_ok=True)


def _ensure_database(paths: HomePaths, port: int) -> None:
    """Create the application database on first use (under the home lock: no race)."""
    deadline = time.monotonic() + POSTGRES_START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(
                host=HOST,
                port=port,
                user=POSTGRES_SUPERUSER,
                dbname="postgres",
                connect_timeout=5,
                autocommit=True,
            ) as conn:
                found = conn.execute(
                    "select 1 from pg_database where datname = %s", (DATABASE_NAME,)
                ).fetchone()
                if found is None:
                    conn.execute(
                        sql.SQL("create database {}").format(sql.Identifier(DATABASE_NAME))
                    )
                return
        except psycopg.OperationalError as exc:
            # A server found running may still be starting up (or recovering).
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"embedded PostgreSQL on {HOST}:{port} does not accept connections "
                    f"({str(exc).strip()}); see {paths.postgres_log}"
                ) from None
            time.sleep(0.1)


def stop_postgres(paths: HomePaths, mode: str = "fast") -> None:
    """Stop the server. ``mode`` is pg_ctl's: fast (roll back sessions, checkpoint) by
    default; ``immediate`` aborts like a crash (recovery runs at the next start), which
    the chaos runs use."""
    if mode not in ("smart", "fast", "immediate"):
        raise ValueError(f"pg_ctl stop mode {mode!r}: expected smart, fast or immediate")
    running = running_postmaster(paths.pgdata)
    if running is None:
        return
    run_as = postgres_run_as()
    if run_as is not None:
        grant_traverse(paths.pgdata)
    offset = log_offset(paths.postgres_log)
    # -m fast: roll back open sessions (workers reconnect) instead of waiting for them.
    code = _run_postgres_tool(
        run_as,
        ["pg_ctl", "-D", str(paths.pgdata), "-m", mode, "-w", "-t", str(STOP_TIMEOUT_S), "stop"],
        log_file=paths.postgres_log,
        timeout=STOP_TIMEOUT_S + 10,
        cwd=paths.pgdata,
    )
    if code != 0 and not wait_gone(running.pid, 1.0):
        raise failure(
            f"embedded PostgreSQL (pid {running.pid}) did not stop (pg_ctl exit {code})",
            paths.postgres_log,
            offset,
        )
    log.info("embedded_postgres_stopped", pid=running.pid)


def _run_postgres_tool(
    run_as: RunAs | None, args: list[str], *, log_file: Path, timeout: float, cwd: Path
) -> int:
    """Run initdb/pg_ctl (as the postgres account when root), output appended to log_file.

    Output goes to a file, not a pipe: pg_ctl's server child could otherwise hold the
    pipe open and make us wait forever. PG* variables are dropped so a PGPORT or
    PGOPTIONS meant for another server cannot change ours.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with log_file.open("ab") as out:
        try:
            result = subprocess.run(
                [str(postgres_bin(args[0])), *args[1:]],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                timeout=timeout,
                # Own session: a Ctrl-C in the terminal that started us must not reach
                # the server that other processes share.
                start_new_session=True,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
        except subprocess.TimeoutExpired:
            return -1
    return result.returncode
