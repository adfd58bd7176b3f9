"""`make chaos`: a sandboxed campaign under faults, audited against the sandbox's ledger.

Each run starts its own world: a fresh database on the configured PostgreSQL, a
private `redis-server` on a free port (never the machine's shared one: runs restart
it), `dialer sandbox` (the seed 004 provider, real HTTP), `dialer api` (the signed
webhook ingress), workers and beat, all supervised by `dialer.processes`, which
restarts whatever exits. A campaign of ``--customers`` contacts runs on a fast
clock while a fault is injected every few seconds; when the campaign is done (or
the deadline passes) the run compares the sandbox's ledger with the database:

- attempts, provider calls, duplicate calls per attempt (ledger keys placed twice,
  or calls whose key no attempt has), enrollments with two open attempts,
  customers called more than the campaign allows (per number, across attempts),
- results lost (a ledger call whose attempt has no terminal status matching the
  provider's final status), enrollments stuck (active once the run ended),
- time to done against the fault-free run, and whether every process came back.

Usage: ``python -m bench.chaos [--customers 1000] [--faults none,worker-kill,...]``.
Needs a PostgreSQL URL (DIALER_DATABASE_URL) and `redis-server` on PATH.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from dialer import migrate
from dialer.clock import utcnow
from dialer.customers_csv import parse_customers
from dialer.embedded.home import HomePaths
from dialer.embedded.postgres import ensure_postgres, stop_postgres
from dialer.embedded.urls import postgres_url
from dialer.policies.status import map_provider_status
from dialer.policies.vocabulary import ProviderCallStatus
from dialer.policies.window import LegalBound
from dialer.processes import ProcessGroup, fast_clock_env
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign
from dialer.services.imports import import_customers
from dialer.services.lifecycle import lock_campaign, start_campaign
from dialer.settings import PROVIDER_SECRETS, load_settings
from models import CallAttempt, Campaign, Enrollment, Message
from models.session import transaction

# One simulated minute per real second. At 600x (the first runs) every real second of
# queue latency on a loaded machine cost ten simulated minutes: results applied 20 s
# late pushed third attempts past the window's 19:00 close, and the run waited out a
# simulated night (~85 s real) even with no fault. At 60x the 10-hour window lasts
# ten real minutes, longer than any run.
SPEED = 60.0
SIM_START = datetime(2026, 11, 23, 8, tzinfo=UTC)  # a Monday, 09:00 in Rome
# A fault every 15 s: far more than a fleet sees (a crash every few minutes, a broker
# or database restart every few hours). Worker kills come every 60 s: a worker needs
# 30-60 s to start on the shared machine at load 13-17, and at one kill every 4 s (the
# first runs), or 15 s, a worker was killed again before it was ready (7 "ready" for 16
# kills in 300 s), so the workers were down most of the run and it never finished.
FAULT_EVERY_SECONDS = 15.0
EVERY_SECONDS_BY_KIND = {"worker-kill": 60.0}
DEADLINE_SECONDS = 600.0
DELAYS_MINUTES = [10, 20]  # 10 and 20 real seconds at SPEED
SPEC: dict[str, Any] = {
    "name": "Chaos",
    "agent": {"name": "Agent", "provider_agent_id": "agt_chaos", "phone_numbers": ["+12125550199"]},
    "timezone": "Europe/Rome",
    "call_attempt_delays": DELAYS_MINUTES,
    "whatsapp_after_attempts": 2,
    "whatsapp_first_message": "Hi {{name}}, we tried to call you.",
    "whatsapp_channel": {"name": "WA", "address": "+12125550197"},
    "concurrency": 100,
}
OPEN = ("pending", "queued", "dispatching", "in_progress")
FAULTS = (
    "none",
    "worker-kill",
    "redis-restart-aof",
    "redis-restart-no-aof",
    "postgres-restart-fast",
    "postgres-restart-immediate",
    "beat-failover",
    "ingress-kill",
)
POSTGRES_FAULTS = {"postgres-restart-fast": "fast", "postgres-restart-immediate": "immediate"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateRedis:
    """A redis-server of the run's own, restartable at will."""

    directory: Path
    append_only: bool
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.directory), "--save", ""]
        argv += ["--appendonly", "yes" if self.append_only else "no", "--appendfsync", "always"]
        log = (self.directory / "redis.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_seconds: float = 2.0) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the run's own (dialer.embedded), restartable at will.

    The machine's shared server is never restarted: other sessions use it.
    """

    directory: Path
    port: int | None = None

    @property
    def paths(self) -> HomePaths:
        return HomePaths(self.directory.resolve())

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the private PostgreSQL is not started")
        return postgres_url(self.port)

    def start(self) -> None:
        self.port = ensure_postgres(self.paths, self.port).port  # the same port again

    def stop(self, mode: str = "fast") -> None:
        stop_postgres(self.paths, mode)

    def restart(self, mode: str, down_seconds: float = 2.0) -> None:
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()


@contextmanager
def private_postgres(home: Path) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(home / "pg")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")


@contextmanager
def scratch_database(base_url: str) -> Iterator[str]:
    url = make_url(base_url)
    name = f"dialer_chaos_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rome_phone(n: int) -> str:
    return f"+39061234{5600 + n:04d}"


def setup_campaign(url: str, customers: int) -> uuid.UUID:
    rows = "".join(f"c{i:04d},Name{i},{rome_phone(i)},gold\n" for i in range(customers))
    with transaction(url) as session:
        account = get_or_create_account(session, f"chaos-{uuid.uuid4().hex[:8]}")
        campaign = create_campaign(
            session, account, CampaignSpec.model_validate(SPEC), LegalBound()
        )
        csv_text = "customer_id,name,phone,plan\n" + rows
        import_customers(session, campaign, parse_customers(io.StringIO(csv_text)), partial=True)
        return campaign.id


@dataclass
class World:
    """One run's processes and servers."""

    group: ProcessGroup
    redis_server: PrivateRedis
    env: dict[str, str]
    restarted: Counter[str] = field(default_factory=Counter)
    postgres: PrivatePostgres | None = None

    @property
    def sandbox_url(self) -> str:
        return self.env["DIALER_PROVIDER_BASE_URL"]


def _fresh_secret(name: str) -> str:
    prefix = {"provider_api_key": "sk_", "webhook_secret": "whsec_", "whatsapp_token": "wa_"}
    return prefix.get(name, "") + uuid.uuid4().hex + uuid.uuid4().hex


def build_env(database_url: str, redis_url: str, home: Path) -> dict[str, str]:
    sandbox, api = _free_port(), _free_port()
    return {
        "DIALER_DATABASE_URL": database_url,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_HOME": str(home),
        # Beat's tick sends 4-5 tasks to the main worker; at 0.25 s they took most of its
        # two processes and results were applied at ~7 events/s. 1 s is one simulated
        # minute at SPEED.
        "DIALER_SCAN_INTERVAL_SECONDS": "1.0",
        "DIALER_LOG_FORMAT": "json",
        "DIALER_PROVIDER": "http",
        "DIALER_PROVIDER_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "DIALER_WHATSAPP_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "DIALER_SANDBOX_PORT": str(sandbox),
        "DIALER_API_PORT": str(api),
        "DIALER_PUBLIC_WEBHOOK_BASE_URL": f"http://127.0.0.1:{api}",
        "DIALER_PROVIDER_CALLS_PER_SECOND": "100",
        # A real provider is selected: every provider secret fresh, none a sandbox
        # default (the sandbox reads these too). From PROVIDER_SECRETS, so a secret
        # added later cannot leave `dialer api` refusing to start here again.
        **{f"DIALER_{name.upper()}": _fresh_secret(name) for name in PROVIDER_SECRETS},
        "DIALER_UI_SESSION_SECRET": f"ui_{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "DIALER_DISPATCH_CHUNK_SIZE": "25",
        # Real seconds: a lost webhook is reconciled, a lost claim re-sent, within seconds.
        # Longer than the longest simulated call (25 s ringing + 300 s answered = 5.4 s
        # real at 60x) plus the apply backlog: at 5 s the reaper raced the webhooks and
        # reconciled most calls one GET at a time.
        "DIALER_MAX_CALL_SECONDS": "15",
        # Past the results backlog at load 16 (~7 events/s applied): at 30 s the sweep
        # marked messages unknown whose stored status was still queued for apply.
        "DIALER_MESSAGE_STATUS_TIMEOUT_SECONDS": "120",
        "DIALER_QUEUED_TIMEOUT_SECONDS": "10",
        "DIALER_DISPATCHING_TIMEOUT_SECONDS": "10",
        "DIALER_BEAT_LOCK_TIMEOUT_SECONDS": "5",
        **fast_clock_env(SIM_START, SPEED, datetime.now(UTC)),
    }


def wait_http(url: str, timeout: float = 120.0) -> None:  # slow on a loaded machine
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start_world(world: World, beats: int) -> None:
    group, env = world.group, world.env
    group.dialer("sandbox", ["sandbox"])
    group.dialer("api", ["api"])
    wait_http(f"{env['DIALER_PROVIDER_BASE_URL']}/sandbox/health")
    wait_http(f"{env['DIALER_PUBLIC_WEBHOOK_BASE_URL']}/healthz")
    group.worker("worker-dispatch", concurrency=2, queues="dispatch")
    group.worker("worker-main", concurrency=2, queues="scan,results,messages,events")
    for n in range(beats):
        group.beat(f"beat-{n}")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def _kill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def inject(kind: str, world: World, rng: random.Random) -> None:
    """One fault of the run's kind, now."""
    group = world.group
    if kind == "worker-kill":
        name = rng.choice(["worker-dispatch", "worker-main"])
        main = group.current(name)
        pool = children(main.pid)
        if pool and rng.random() < 0.5:  # a pool child, else the main process
            _kill(rng.choice(pool))
            world.restarted[f"{name} pool child"] += 1
        else:
            _kill(main.pid)
            world.restarted[name] += 1
    elif kind in ("redis-restart-aof", "redis-restart-no-aof"):
        world.redis_server.restart()
        world.restarted["redis"] += 1
    elif kind in POSTGRES_FAULTS:
        if world.postgres is None:
            raise RuntimeError(f"{kind} needs the run's private PostgreSQL")
        world.postgres.restart(POSTGRES_FAULTS[kind])
        world.restarted["postgres"] += 1
    elif kind == "beat-failover":
        leader = _beat_leader(world)
        if leader is not None:
            _kill(group.current(leader).pid)
            world.restarted[leader] += 1
    elif kind == "ingress-kill":
        _kill(group.current("api").pid)
        world.restarted["api"] += 1


def _beat_leader(world: World) -> str | None:
    """The beat holding the lock: the one whose log says it acquired it last."""
    best: tuple[float, str] | None = None
    for path in world.group.log_dir.glob("beat-*.log"):
        text = path.read_text(errors="replace")
        at = text.rfind("cquired lock")
        if at >= 0:
            stamp = path.stat().st_mtime if at else 0.0
            if best is None or stamp > best[0]:
                best = (stamp, path.stem)
    return best[1] if best else None


@dataclass
class Audit:
    fault: str
    customers: int
    done: bool
    seconds_to_done: float
    attempts: int
    provider_calls: int
    duplicate_calls_per_attempt: int
    calls_without_attempt: int
    enrollments_with_two_open_attempts: int
    customers_called_more_than_allowed: int
    results_lost: int
    enrollments_stuck: int
    messages_owed: int
    messages_unconfirmed: int  # WhatsApp still `sent`: no status recorded
    messages_unknown: int  # marked unknown by the reaper's status sweep
    faults_injected: dict[str, int]
    restarts: dict[str, int]
    all_processes_running: bool
    load_average: float = field(default_factory=lambda: round(os.getloadavg()[0], 1))
    ratio_to_fault_free: float | None = None
    fault_every_seconds: float | None = None


def audit(
    url: str, campaign_id: uuid.UUID, world: World, fault: str, seconds: float, done: bool
) -> Audit:
    ledger = httpx.get(f"{world.sandbox_url}/sandbox/ledger", timeout=30).json()
    with transaction(url) as session:
        attempts = session.execute(
            select(
                CallAttempt.idempotency_key,
                CallAttempt.status,
                CallAttempt.outcome,
                CallAttempt.enrollment_id,
            ).where(CallAttempt.campaign_id == campaign_id)
        ).all()
        open_per_enrollment = Counter(a.enrollment_id for a in attempts if a.status in OPEN)
        stuck = session.scalar(
            select(func.count()).where(
                Enrollment.campaign_id == campaign_id, Enrollment.state == "active"
            )
        )
        owed = session.scalar(
            select(func.count()).where(
                Message.campaign_id == campaign_id,
                Message.direction == "outbound",
                Message.status.in_(("pending", "queued")),
            )
        )
        by_status: dict[str, int] = dict(
            session.execute(
                select(Message.status, func.count())
                .where(Message.campaign_id == campaign_id, Message.direction == "outbound")
                .group_by(Message.status)
            ).all()
        )
    by_key = {a.idempotency_key: a for a in attempts}
    calls = ledger["calls"]
    per_number = Counter(call["to"] for call in calls)
    allowed = len(DELAYS_MINUTES) + 1
    lost = 0
    for call in calls:
        attempt = by_key.get(call["idempotency_key"])
        if attempt is None or (not done and attempt.status in OPEN):
            continue  # in flight when an unfinished run stopped: not lost (yet)
        status, _ = map_provider_status(ProviderCallStatus(call["planned_status"]))
        if attempt.status != status.value:
            lost += 1
    return Audit(
        fault=fault,
        customers=len({a.enrollment_id for a in attempts}),
        done=done,
        seconds_to_done=round(seconds, 1),
        attempts=len(attempts),
        provider_calls=len(calls),
        duplicate_calls_per_attempt=sum(n - 1 for n in ledger["calls_by_key"].values() if n > 1),
        calls_without_attempt=sum(1 for c in calls if c["idempotency_key"] not in by_key),
        enrollments_with_two_open_attempts=sum(1 for n in open_per_enrollment.values() if n > 1),
        customers_called_more_than_allowed=sum(1 for n in per_number.values() if n > allowed),
        results_lost=lost,
        enrollments_stuck=int(stuck or 0),
        messages_owed=int(owed or 0),
        messages_unconfirmed=int(by_status.get("sent", 0)),
        messages_unknown=int(by_status.get("unknown", 0)),
        faults_injected=dict(world.restarted),
        restarts=dict(world.group.restarts),
        all_processes_running=all(p.poll() is None for p in world.group.procs),
    )


def campaign_done(url: str, campaign_id: uuid.UUID) -> bool:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).status == "done"


def run(
    fault: str,
    customers: int,
    base_url: str,
    deadline: float = DEADLINE_SECONDS,
    seed: int = 1,
    fault_every: float = FAULT_EVERY_SECONDS,
) -> Audit:
    home = Path(tempfile.mkdtemp(prefix=f"chaos-{fault}-"))
    redis_server = PrivateRedis(home, append_only=fault != "redis-restart-no-aof")
    redis_server.start()
    try:
        with ExitStack() as stack:
            postgres = None
            if fault in POSTGRES_FAULTS:  # restarted by the run: a cluster of its own
                postgres = stack.enter_context(private_postgres(home))
                url = postgres.url
            else:
                url = stack.enter_context(scratch_database(base_url))
            migrate.upgrade(url)
            campaign_id = setup_campaign(url, customers)
            env = build_env(url, redis_server.url, home)
            group = ProcessGroup(env=env, log_dir=home / "logs")
            world = World(group, redis_server, env, postgres=postgres)
            try:
                start_world(world, beats=2 if fault == "beat-failover" else 1)
                rng = random.Random(seed)
                return _drive(world, url, campaign_id, fault, rng, deadline, fault_every)
            finally:
                group.stop()
    finally:
        redis_server.kill()
        if os.environ.get("CHAOS_KEEP") is None:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"kept {home}")


def _drive(
    world: World,
    url: str,
    campaign_id: uuid.UUID,
    fault: str,
    rng: random.Random,
    deadline: float,
    fault_every: float,
) -> Audit:
    fields: dict[str, object] = {k.removeprefix("DIALER_").lower(): v for k, v in world.env.items()}
    settings = load_settings(**fields)
    with transaction(url) as session:
        start_campaign(session, lock_campaign(session, campaign_id), utcnow(settings))
    started = time.monotonic()
    next_fault = started + fault_every
    done = False
    while time.monotonic() - started < deadline:
        if campaign_done(url, campaign_id):
            done = True
            break
        if fault != "none" and time.monotonic() >= next_fault:
            inject(fault, world, rng)
            next_fault = time.monotonic() + fault_every
        time.sleep(0.25)
    seconds = time.monotonic() - started
    time.sleep(2.0)  # the last webhooks land
    result = audit(url, campaign_id, world, fault, seconds, done)
    result.fault_every_seconds = fault_every if fault != "none" else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS)
    parser.add_argument("--fault-every", type=float, default=None, help="seconds; default per kind")
    parser.add_argument("--out", type=Path, default=Path("bench/results/chaos.json"))
    args = parser.parse_args(argv)
    base_url = os.environ.get("DIALER_DATABASE_URL")
    if not base_url or shutil.which("redis-server") is None:
        raise SystemExit("chaos: needs DIALER_DATABASE_URL and redis-server on PATH")
    results: list[Audit] = []
    baseline: float | None = None
    for fault in args.faults.split(","):
        every = args.fault_every or EVERY_SECONDS_BY_KIND.get(fault, FAULT_EVERY_SECONDS)
        result = run(fault, args.customers, base_url, args.deadline, fault_every=every)
        if fault == "none" and result.done:
            baseline = result.seconds_to_done
        if baseline:
            result.ratio_to_fault_free = round(result.seconds_to_done / baseline, 2)
        results.append(result)
        print(json.dumps(asdict(result)), flush=True)
        # Written after every run: a suite cut short keeps the runs that finished.
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0 if all(_held(r) for r in results) else 1


def _held(result: Audit) -> bool:
    return (
        result.done
        and result.duplicate_calls_per_attempt == 0
        and result.calls_without_attempt == 0
        and result.enrollments_with_two_open_attempts == 0
        and result.customers_called_more_than_allowed == 0
        and result.results_lost == 0
        and result.enrollments_stuck == 0
    )


if __name__ == "__main__":
    raise SystemExit(main())
