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
from contextlib import contextmanager, suppress
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
from dialer.policies.status import map_provider_status
from dialer.policies.vocabulary import ProviderCallStatus
from dialer.policies.window import LegalBound
from dialer.processes import ProcessGroup, fast_clock_env
from dialer.schemas import CampaignSpec
from dialer.services.accounts import get_or_create_account
from dialer.services.campaigns import create_campaign
from dialer.services.imports import import_customers
from dialer.services.lifecycle import lock_campaign, start_campaign
from dialer.settings import load_settings
from models import CallAttempt, Campaign, Enrollment, Message
from models.session import transaction

SPEED = 600.0  # ten simulated minutes per real second: a working day is ~1 real minute
SIM_START = datetime(2026, 11, 23, 8, tzinfo=UTC)  # a Monday, 09:00 in Rome
FAULT_EVERY_SECONDS = 4.0
DEADLINE_SECONDS = 600.0
DELAYS_MINUTES = [30, 60]
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
    "beat-failover",
    "ingress-kill",
)


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

    @property
    def sandbox_url(self) -> str:
        return self.env["DIALER_PROVIDER_BASE_URL"]


def build_env(database_url: str, redis_url: str, home: Path) -> dict[str, str]:
    sandbox, api = _free_port(), _free_port()
    return {
        "DIALER_DATABASE_URL": database_url,
        "DIALER_REDIS_URL": redis_url,
        "DIALER_HOME": str(home),
        "DIALER_SCAN_INTERVAL_SECONDS": "0.25",
        "DIALER_LOG_FORMAT": "json",
        "DIALER_PROVIDER": "http",
        "DIALER_PROVIDER_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "DIALER_WHATSAPP_BASE_URL": f"http://127.0.0.1:{sandbox}",
        "DIALER_SANDBOX_PORT": str(sandbox),
        "DIALER_API_PORT": str(api),
        "DIALER_PUBLIC_WEBHOOK_BASE_URL": f"http://127.0.0.1:{api}",
        "DIALER_PROVIDER_CALLS_PER_SECOND": "100",
        # A real provider is selected: no sandbox default secrets (the sandbox reads these too).
        "DIALER_WEBHOOK_SECRET": f"whsec_{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "DIALER_PROVIDER_API_KEY": f"sk_{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "DIALER_WHATSAPP_TOKEN": f"wa_{uuid.uuid4().hex}{uuid.uuid4().hex}",
        "DIALER_DISPATCH_CHUNK_SIZE": "25",
        # Real seconds: a lost webhook is reconciled, a lost claim re-sent, within seconds.
        "DIALER_MAX_CALL_SECONDS": "5",
        "DIALER_QUEUED_TIMEOUT_SECONDS": "10",
        "DIALER_DISPATCHING_TIMEOUT_SECONDS": "10",
        "DIALER_BEAT_LOCK_TIMEOUT_SECONDS": "5",
        **fast_clock_env(SIM_START, SPEED, datetime.now(UTC)),
    }


def wait_http(url: str, timeout: float = 30.0) -> None:
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
    faults_injected: dict[str, int]
    restarts: dict[str, int]
    all_processes_running: bool
    ratio_to_fault_free: float | None = None


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
        session.get_one(Campaign, campaign_id)
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
        faults_injected=dict(world.restarted),
        restarts=dict(world.group.restarts),
        all_processes_running=all(p.poll() is None for p in world.group.procs),
    )


def campaign_done(url: str, campaign_id: uuid.UUID) -> bool:
    with transaction(url) as session:
        return session.get_one(Campaign, campaign_id).status == "done"


def run(
    fault: str, customers: int, base_url: str, deadline: float = DEADLINE_SECONDS, seed: int = 1
) -> Audit:
    home = Path(tempfile.mkdtemp(prefix=f"chaos-{fault}-"))
    redis_server = PrivateRedis(home, append_only=fault != "redis-restart-no-aof")
    redis_server.start()
    try:
        with scratch_database(base_url) as url:
            migrate.upgrade(url)
            campaign_id = setup_campaign(url, customers)
            env = build_env(url, redis_server.url, home)
            group = ProcessGroup(env=env, log_dir=home / "logs")
            world = World(group, redis_server, env)
            try:
                start_world(world, beats=2 if fault == "beat-failover" else 1)
                return _drive(world, url, campaign_id, fault, random.Random(seed), deadline)
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
) -> Audit:
    fields: dict[str, object] = {k.removeprefix("DIALER_").lower(): v for k, v in world.env.items()}
    settings = load_settings(**fields)
    with transaction(url) as session:
        start_campaign(session, lock_campaign(session, campaign_id), utcnow(settings))
    started = time.monotonic()
    next_fault = started + FAULT_EVERY_SECONDS
    done = False
    while time.monotonic() - started < deadline:
        if campaign_done(url, campaign_id):
            done = True
            break
        if fault != "none" and time.monotonic() >= next_fault:
            inject(fault, world, rng)
            next_fault = time.monotonic() + FAULT_EVERY_SECONDS
        time.sleep(0.25)
    seconds = time.monotonic() - started
    time.sleep(2.0)  # the last webhooks land
    return audit(url, campaign_id, world, fault, seconds, done)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--deadline", type=float, default=DEADLINE_SECONDS)
    parser.add_argument("--out", type=Path, default=Path("bench/results/chaos.json"))
    args = parser.parse_args(argv)
    base_url = os.environ.get("DIALER_DATABASE_URL")
    if not base_url or shutil.which("redis-server") is None:
        raise SystemExit("chaos: needs DIALER_DATABASE_URL and redis-server on PATH")
    results: list[Audit] = []
    baseline: float | None = None
    for fault in args.faults.split(","):
        result = run(fault, args.customers, base_url, args.deadline)
        if fault == "none" and result.done:
            baseline = result.seconds_to_done
        if baseline:
            result.ratio_to_fault_free = round(result.seconds_to_done / baseline, 2)
        results.append(result)
        print(json.dumps(asdict(result)), flush=True)
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
