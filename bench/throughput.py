"""Attempts per second end to end: real Celery workers + beat, and the in-process driver.

A run: empty tables, a campaign of N customers all callable now, started (its
``campaign.started`` outbox row). For Celery, ``celery beat`` (the project's schedule,
``DIALER_SCAN_INTERVAL_SECONDS`` small) relays the event, the worker materializes the
attempts, and the scan/dispatch/pump duties run until every attempt is terminal. The
figure comes from the database: attempts done / (last result applied - first dispatch).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from bench import fixtures, metrics, procs, profiling
from bench.env import BenchEnv, flush_redis, pg_stat, postmaster, redis_process, truncate_all
from bench.sampling import MachineCpu, Sampler, tree
from dialer import gc_tuning
from dialer.providers.simulation import SimulationProfile, build_simulated_providers
from models.session import engine_for, transaction
from scheduler import ticks
from scheduler.driver import InProcessPipeline, ManualClock

QUEUES = "scan,dispatch,results,messages,events"


START_TIMEOUT_S = 60.0  # worker start-up, materialization, first claim
DRAIN_TIMEOUT_S = 30.0  # after the time box: in-flight calls finishing


@dataclass(frozen=True)
class Params:
    customers: int
    concurrency: int
    scan_interval_s: float
    call_seconds: float
    run_seconds: float  # time box from the first dispatch; then pause and drain
    dispatch_chunk: int = 250  # attempts per dispatch task (DIALER_DISPATCH_CHUNK_SIZE)


def worker_env(env: BenchEnv, p: Params, namespace: str, workers: int) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    return {
        **base,
        "DIALER_HOME": str(env.settings.home.expanduser().resolve()),
        "DIALER_DATABASE_URL": env.database_url,
        "DIALER_REDIS_URL": env.redis_url,
        "DIALER_SIMULATION": json.dumps(fixtures.simulation_profile(p.call_seconds)),
        "DIALER_SIMULATION_NAMESPACE": namespace,
        "DIALER_SCAN_INTERVAL_SECONDS": str(p.scan_interval_s),
        "DIALER_WORKER_CONCURRENCY": str(workers),
        # A fast (simulated) provider: big chunks amortise the per-task overhead
        # (~15 ms of CPU per dispatch task, whatever its size).
        "DIALER_DISPATCH_CHUNK_SIZE": str(p.dispatch_chunk),
        "DIALER_SCAN_BATCH_SIZE": "1000",
        "DIALER_LOG_LEVEL": "WARNING",
        "DIALER_LOG_FORMAT": "json",
        **fixtures.LEGAL_ENV,
    }


class _Progress:
    """Counts from one autocommit connection (each poll is one commit: subtracted later)."""

    def __init__(self, env: BenchEnv, campaign_id: uuid.UUID) -> None:
        self.conn = psycopg.connect(**env.conninfo, autocommit=True)
        self.campaign_id = campaign_id
        self.polls = 0

    def counts(self) -> tuple[int, int, int, int]:
        """(attempts, dispatched, terminal, in flight) of the campaign."""
        self.polls += 1
        row = self.conn.execute(
            "SELECT count(*), count(dispatched_at),"
            " count(*) FILTER (WHERE status IN ('completed', 'failed', 'canceled')),"
            " count(*) FILTER (WHERE status IN ('queued', 'dispatching', 'in_progress'))"
            " FROM call_attempts WHERE campaign_id = %s",
            (self.campaign_id,),
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def close(self) -> None:
        self.conn.close()


class LockProbe:
    """How often a scan tick would find the campaign row locked (and skip the campaign).

    ``scan_campaign`` locks the campaign with FOR NO KEY UPDATE SKIP LOCKED; any
    transaction holding a conflicting row lock (an update of the campaign row, another
    scan) makes that tick claim nothing. Foreign-key checks (FOR KEY SHARE) do not.
    The probe asks the same question ~20 times a second in a rolled-back transaction
    (holding the lock well under a millisecond).
    """

    def __init__(self, env: BenchEnv, campaign_id: uuid.UUID, interval: float = 0.05) -> None:
        self.conn = psycopg.connect(**env.conninfo, autocommit=True)
        self.campaign_id = campaign_id
        self.interval = interval
        self.probes = 0
        self.locked = 0
        self.holders: Counter[str] = Counter()
        self.rowlocks = True
        self.autocommits = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-lock-probe", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.conn.transaction(force_rollback=True):
                    row = self.conn.execute(
                        "SELECT 1 FROM campaigns WHERE id = %s AND status = 'running'"
                        " FOR NO KEY UPDATE SKIP LOCKED",
                        (self.campaign_id,),
                    ).fetchone()
                if row is None:
                    self._attribute()
            except psycopg.Error:
                return
            self.probes += 1
            self.locked += row is None

    def _attribute(self) -> None:
        """Who holds it: lock mode (pgrowlocks) and the holder's last statement."""
        if not self.rowlocks:
            return
        try:
            rows = self.conn.execute(
                "SELECT r.modes::text, a.state, left(a.query, 200)"
                " FROM pgrowlocks('campaigns') r, unnest(r.pids) AS p(pid)"
                " JOIN pg_stat_activity a ON a.pid = p.pid"
            ).fetchall()
        except psycopg.Error:
            self.rowlocks = False
            return
        self.autocommits += 1  # subtracted from the run's commit count
        for modes, state, query in rows:
            self.holders[f"{modes} | {_holder(str(query or ''))} ({state})"] += 1

    def report(self) -> dict[str, Any]:
        return {
            "probes": self.probes,
            "campaign_row_locked_pct": round(100 * self.locked / self.probes, 1)
            if self.probes
            else None,
            "holders": dict(self.holders.most_common(8)),
        }


def _holder(query: str) -> str:
    """Name the transaction holding the campaign row from its last statement."""
    flat = " ".join(query.split())
    if "rotation_cursors" in flat or "FROM agents" in flat or "SET external_from" in flat:
        return "dispatch _prepare_batch"
    if flat.startswith("SELECT campaigns.") and "SKIP LOCKED" in flat:
        return "scan_campaign lock"
    if flat.startswith("SELECT campaigns.") and "FOR UPDATE" in flat:
        return "lock_campaign (finish/materialize/lifecycle)"
    if "FROM call_attempts" in flat and "SKIP LOCKED" in flat:
        return "scan_campaign (_lock_due)"
    if flat.startswith("SELECT count(*)"):
        return "scan_campaign (_free_slots) or _has_work_left"
    if flat.startswith("UPDATE call_attempts SET status=%(status_1)s") or "queued_at=" in flat:
        return "scan_campaign (claim UPDATE)"
    return flat[:70]


def _double_calls(env: BenchEnv, namespace: str) -> dict[str, int]:
    voice, _ = build_simulated_providers(
        env.redis_url, lambda: datetime.now(UTC), SimulationProfile(), namespace
    )
    per_key = voice.ledger_count_by_key()
    return {
        "calls_placed": sum(per_key.values()),
        "keys_called_more_than_once": sum(1 for n in per_key.values() if n > 1),
    }


def run_celery(env: BenchEnv, p: Params, workers: int, *, pyspy: bool = False) -> dict[str, Any]:
    truncate_all(env.database_url)
    flush_redis(env.redis_url)
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    zone = fixtures.noon_zone(now)
    campaign_id = fixtures.create(
        env.database_url, f"celery-c{workers}", zone, p.customers, concurrency=p.concurrency
    )
    fixtures.start(env.database_url, campaign_id, now)
    engine_for(env.database_url).dispose()  # our pooled connections must not count
    stat0 = pg_stat(env)
    child_env = worker_env(env, p, namespace, workers)
    schedule = env.work_dir / f"celerybeat-schedule-c{workers}"
    for stale in env.work_dir.glob(f"celerybeat-schedule-c{workers}*"):
        stale.unlink()
    worker_argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks.app",
        "worker",
        "-Q",
        QUEUES,
        "-c",
        str(workers),
        "--loglevel",
        "WARNING",
        "-n",
        f"bench-c{workers}-{namespace}@%h",
    ]
    beat_argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks.app",
        "beat",
        "--loglevel",
        "WARNING",
        "-s",
        str(schedule),
        "--pidfile",
        str(env.work_dir / f"celerybeat-c{workers}.pid"),
    ]
    worker_log = env.work_dir / f"worker-c{workers}.log"
    beat_log = env.work_dir / f"beat-c{workers}.log"
    progress = _Progress(env, campaign_id)
    started = time.perf_counter()
    worker = procs.start(worker_argv, child_env, worker_log)
    beat = procs.start(beat_argv, child_env, beat_log)
    spy: Any = None
    spy_out = env.work_dir / f"pyspy-c{workers}.txt"
    sampler = Sampler(
        {
            "workers": tree(psutil.Process(worker.pid)),
            "beat": tree(psutil.Process(beat.pid)),
            "postgres": tree(postmaster(env)),
            "redis": tree(redis_process(env)),
        }
    )
    probe = LockProbe(env, campaign_id)
    machine: MachineCpu | None = None
    machine_report: dict[str, Any] = {}
    first_dispatch_wall: float | None = None
    timed_out = False
    failure: str | None = None
    cpu: dict[str, float] = {}
    paused_after: float | None = None
    try:
        with sampler:
            while True:
                total, dispatched, terminal, in_flight = progress.counts()
                now_wall = time.perf_counter()
                if dispatched and first_dispatch_wall is None:
                    first_dispatch_wall = now_wall
                    sampler.mark()
                    machine = MachineCpu()
                    probe.start()
                    if pyspy:
                        spy_out.unlink(missing_ok=True)
                        spy = profiling.start_pyspy(worker.pid, spy_out)
                if total >= p.customers and terminal == total:
                    break  # every attempt done
                if paused_after is not None and in_flight == 0:
                    break  # time box reached and drained
                if worker.poll() is not None or beat.poll() is not None:
                    failure = f"a Celery process exited early; see {worker_log} / {beat_log}"
                    break
                box_over = (
                    first_dispatch_wall is not None
                    and now_wall - first_dispatch_wall > p.run_seconds
                )
                if box_over and paused_after is None:
                    # Time box: no new claims; what is in flight finishes and is counted.
                    paused_after = now_wall - (first_dispatch_wall or now_wall)
                    fixtures.pause(env.database_url, campaign_id)
                waited = now_wall - (first_dispatch_wall or started)
                if first_dispatch_wall is None and now_wall - started > START_TIMEOUT_S:
                    timed_out = True
                    failure = f"no dispatch within {START_TIMEOUT_S:.0f} s; see {worker_log}"
                    break
                if waited > p.run_seconds + DRAIN_TIMEOUT_S:
                    timed_out = True
                    break
                time.sleep(0.2)
            done_wall = time.perf_counter()
            sampler.sample()
            cpu = {name: sampler.cpu_seconds(name) for name in sampler.groups}
            if machine is not None:
                machine_report = machine.report(sum(cpu.values()))
                probe.stop()
            if spy is not None:
                profiling.stop_pyspy(spy)
            procs.stop(beat)
            procs.stop(worker)
    finally:
        probe.stop()
        progress.close()
        procs.stop(beat)
        procs.stop(worker)
    time.sleep(0.6)  # backends flush their statistics when they exit
    stat1 = pg_stat(env)
    attempts = metrics.load_attempts(env.database_url, campaign_id)
    tp = metrics.throughput(attempts)
    done = tp.get("attempts_done", 0) or 0
    # Minus our own: progress polls, lock-probe attributions, the pg_stat read itself.
    commits = stat1["xact_commit"] - stat0["xact_commit"] - progress.polls - probe.autocommits - 1
    out: dict[str, Any] = {
        "workers": workers,
        "customers": p.customers,
        "timed_out": timed_out,
        "failure": failure,
        "time_boxed": paused_after is not None,
        "paused_after_s": round(paused_after, 2) if paused_after is not None else None,
        "wall_s": round(done_wall - started, 2),
        "startup_to_first_dispatch_s": (
            round(first_dispatch_wall - started, 2) if first_dispatch_wall else None
        ),
        **tp,
        "latency": metrics.due_to_dispatch(attempts, p.concurrency),
        "outcomes": metrics.outcomes(attempts),
        "resources": sampler.report(),
        "machine": machine_report,
        "campaign_lock": probe.report(),
        "per_attempt": _per_attempt(done, commits, stat0, stat1, cpu),
        "double_calls": _double_calls(env, namespace),
        "logs": {"worker": str(worker_log), "beat": str(beat_log)},
    }
    if pyspy:
        out["pyspy"] = (
            profiling.parse_pyspy(spy_out, skip_pids={worker.pid})
            if spy is not None
            else {"skipped": "py-spy not found (PATH or PY_SPY)"}
        )
    return out


def _per_attempt(
    done: int, commits: int, stat0: dict[str, int], stat1: dict[str, int], cpu: dict[str, float]
) -> dict[str, Any]:
    if not done:
        return {}
    per: dict[str, float | None] = {
        "commits": round(commits / done, 2),
        "rows_updated": round((stat1["tup_updated"] - stat0["tup_updated"]) / done, 2),
        "rows_inserted": round((stat1["tup_inserted"] - stat0["tup_inserted"]) / done, 2),
    }
    for name, seconds in cpu.items():
        per[f"cpu_ms_{name}"] = round(1000 * seconds / done, 3)
    per.update(cpu_ceiling(sum(cpu.values()), done))
    return per


def cpu_ceiling(cpu_seconds: float, done: int) -> dict[str, float | None]:
    """The rate all cores could sustain at this CPU cost per attempt (all processes).

    Robust to other people's load on the machine: it divides CPU time, not wall time.
    """
    if not done or cpu_seconds <= 0:
        return {"cpu_ms_total": None, "cpu_ceiling_attempts_per_s": None}
    per = 1000 * cpu_seconds / done
    return {
        "cpu_ms_total": round(per, 3),
        "cpu_ceiling_attempts_per_s": round((psutil.cpu_count() or 1) * 1000 / per, 1),
    }


# --------------------------------------------------------------------------- in-process


class SqlCounter:
    """Statements, their time and commits on one engine (SQLAlchemy events)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statements = 0
        self.seconds = 0.0
        self.commits = 0
        self.by_statement: Counter[str] = Counter()
        self.time_by_statement: Counter[str] = Counter()

    def _before(self, conn: Connection, *_args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())
        self.statements += 1
        self.seconds += elapsed
        key = " ".join(statement.split())[:160]
        self.by_statement[key] += 1
        self.time_by_statement[key] += elapsed

    def _commit(self, _conn: Connection) -> None:
        self.commits += 1

    @contextmanager
    def attached(self) -> Iterator[SqlCounter]:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        event.listen(self.engine, "commit", self._commit)
        try:
            yield self
        finally:
            event.remove(self.engine, "before_cursor_execute", self._before)
            event.remove(self.engine, "after_cursor_execute", self._after)
            event.remove(self.engine, "commit", self._commit)

    def report(self, attempts: int, wall: float, top: int = 15) -> dict[str, Any]:
        per = max(attempts, 1)
        return {
            "statements_per_attempt": round(self.statements / per, 2),
            "commits_per_attempt": round(self.commits / per, 2),
            "sql_wall_share_pct": round(100 * self.seconds / wall, 1) if wall else None,
            "sql_ms_per_attempt": round(1000 * self.seconds / per, 3),
            "top_statements": [
                {
                    "statement": stmt,
                    "per_attempt": round(n / per, 2),
                    "ms_per_attempt": round(1000 * self.time_by_statement[stmt] / per, 3),
                }
                for stmt, n in self.time_by_statement.most_common(top)
                for n in [self.by_statement[stmt]]
            ],
        }


def _all_closed(conn: psycopg.Connection[Any], campaign_id: uuid.UUID) -> Callable[[], bool]:
    """All attempts terminal, or (after a pause) nothing left in flight."""

    def done() -> bool:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER"
            " (WHERE status IN ('pending', 'queued', 'dispatching', 'in_progress')),"
            " count(*) FILTER (WHERE status IN ('queued', 'dispatching', 'in_progress')),"
            " (SELECT status FROM campaigns WHERE id = %s)"
            " FROM call_attempts WHERE campaign_id = %s",
            (campaign_id, campaign_id),
        ).fetchone()
        if row is None or row[0] == 0:
            return False
        return bool(row[1] == 0 or (row[3] == "paused" and row[2] == 0))

    return done


def run_inprocess(env: BenchEnv, p: Params, *, profile: bool = False) -> dict[str, Any]:
    """The same duties in one process on a ManualClock: no broker, no task overhead."""
    gc_tuning.tune(env.settings.gc_threshold)  # as a worker process does at start
    truncate_all(env.database_url)
    flush_redis(env.redis_url)
    now = datetime.now(UTC)
    zone = fixtures.noon_zone(now)
    url = env.database_url
    campaign_id = fixtures.create(url, "inprocess", zone, p.customers, concurrency=p.concurrency)
    fixtures.start(url, campaign_id, now)
    clock = ManualClock(now)
    sim = SimulationProfile.from_mapping(fixtures.simulation_profile(p.call_seconds))
    voice, messages = build_simulated_providers(
        env.redis_url, clock, sim, namespace=f"inproc-{uuid.uuid4().hex[:8]}"
    )

    def uow() -> AbstractContextManager[Session]:
        return transaction(url)

    def publish(topic: str, payload: dict[str, Any]) -> None:
        ticks.materialize(uow, topic, uuid.UUID(payload["campaign_id"]), clock())

    driver = InProcessPipeline(
        uow=uow,
        voice=voice,
        messages=messages,
        clock=clock,
        legal=fixtures.ALL_DAY,
        batch_size=env.settings.scan_batch_size,
        max_tries=env.settings.dispatch_max_tries,
    )
    # Materialize before timing, so the loop measures claim -> dispatch -> result only.
    relayed = ticks.relay_outbox(uow, publish, clock())
    poll = psycopg.connect(**env.conninfo, autocommit=True)
    done = _all_closed(poll, campaign_id)
    counter = SqlCounter(engine_for(url))
    pg = Sampler({"postgres": tree(postmaster(env))})
    step = timedelta(seconds=1)

    def loop() -> int:
        n = 0
        began = time.perf_counter()
        paused = False
        while True:
            n += 1
            driver.tick()
            if done():
                return n
            if not paused and time.perf_counter() - began > p.run_seconds:
                fixtures.pause(url, campaign_id, clock())  # time box: drain in-flight calls
                paused = True
            if time.perf_counter() - began > p.run_seconds + DRAIN_TIMEOUT_S:
                return n
            clock.advance(step)

    engine_for(url).dispose()
    stat0 = pg_stat(env)
    with poll, pg, counter.attached():
        pg.mark()
        machine = MachineCpu()
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        if profile:
            n_ticks, prof = profiling.cprofile(loop)
        else:
            n_ticks, prof = loop(), None
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        pg.sample()
        pg_cpu = pg.cpu_seconds("postgres")
        machine_report = machine.report(pg_cpu)
    engine_for(url).dispose()  # our backends flush their statistics when they exit
    time.sleep(0.6)
    stat1 = pg_stat(env)
    attempts = metrics.load_attempts(url, campaign_id)
    n_done = sum(1 for a in attempts if a.status in metrics.TERMINAL)
    out: dict[str, Any] = {
        "customers": p.customers,
        "relayed_events": relayed,
        "ticks": n_ticks,
        "wall_s": round(wall, 2),
        "attempts_done": n_done,
        "attempts_per_s": round(n_done / wall, 1) if wall else None,
        "time_boxed": n_done < p.customers,
        "outcomes": metrics.outcomes(attempts),
        "per_attempt": {
            "cpu_ms_bench_process": round(1000 * cpu / max(n_done, 1), 3),
            "cpu_ms_postgres": round(1000 * pg_cpu / max(n_done, 1), 3),
            "pg_commits": round(
                (stat1["xact_commit"] - stat0["xact_commit"] - n_ticks - 1) / max(n_done, 1), 2
            ),
            **cpu_ceiling(cpu + pg_cpu, n_done),
        },
        "machine": machine_report,
        "sql": counter.report(n_done, wall),
        "stats": dict(driver.stats),
        "profiled": profile,
    }
    if prof is not None:
        out["cprofile"] = prof
    return out


def describe(env: BenchEnv, p: Params) -> dict[str, Any]:
    return {
        "params": {
            "customers": p.customers,
            "concurrency": p.concurrency,
            "scan_interval_s": p.scan_interval_s,
            "call_seconds": p.call_seconds,
            "run_seconds": p.run_seconds,
            "simulation": fixtures.simulation_profile(p.call_seconds),
            "retries": "none (call_attempt_delays = [])",
            "dispatch_chunk_size": p.dispatch_chunk,
            "scan_batch_size": env.settings.scan_batch_size,
        }
    }
