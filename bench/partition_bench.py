"""The partitioned scan on real Celery worker processes: the claim rate at 1, 2 and 4.

The campaigns part times the beat duties in one process. A deployment runs the scan of
a big fleet as ``DIALER_SCAN_PARTITIONS`` ``dialer.scan_partition`` tasks that any
worker takes; this part measures that. For each number of worker processes W:

- N running campaigns (``campaigns_bench.load``), 5 attempts due in each;
- a real ``celery -A tasks.app worker -Q scan -c W`` on the bench database, its clock
  anchored to the bench's instant (``DIALER_CLOCK_ANCHOR_*``: the same Monday 10:00 as
  the campaigns part, whatever the day of the run), ``DIALER_SCAN_PARTITIONS`` = P;
- one tick = the P partition tasks published at once, as the beat's scan duty publishes
  them, timed until every due attempt is queued (the database polled every 10 ms);
  the first tick is a warm-up (the worker's imports, connections, statement caches);
- CPU over the timed ticks of the worker processes and of the bench database's
  PostgreSQL backends: PostgreSQL's share = pg / (pg + workers), the machine's busy
  cores and the foreign load beside them.

The claimed attempts' dispatch tasks are left unconsumed (the worker serves only the
scan queue) and deleted between ticks: the dispatch is the throughput part's business.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psutil
import psycopg
import redis
from celery import Celery
from kombu.entity import Queue

from bench import campaigns_bench, fixtures, procs
from bench.env import BenchEnv, postmaster, truncate_all
from bench.sampling import Finder, machine_busy_seconds, tree
from dialer.composition.queues import QUEUES

PARTITIONS = 4
SCAN_QUEUE = "scan"
# The poll is a count over the queued index: every 50 ms, and its backend is left out of
# the PostgreSQL CPU (polling every 10 ms cost as much CPU as the claims themselves).
POLL_SECONDS = 0.05
# As in the throughput part: a fast provider, big dispatch chunks. With the default of
# 10, claiming 50,000 publishes 5,000 dispatch tasks (~0.7 ms of CPU each to publish).
DISPATCH_CHUNK = 250
TICK_TIMEOUT_S = 120.0
WARMUP_TIMEOUT_S = 180.0  # the first tick also waits for the worker to boot


def run(env: BenchEnv, campaigns: int, workers: tuple[int, ...], reps: int) -> dict[str, Any]:
    url = env.database_url
    out: dict[str, Any] = {
        "campaigns": campaigns,
        "customers_per_campaign": campaigns_bench.CUSTOMERS_PER_CAMPAIGN,
        "partitions": PARTITIONS,
        "load_s": round(campaigns_bench.load(url, campaigns), 2),
        "runs": [],
    }
    due = campaigns * campaigns_bench.CUSTOMERS_PER_CAMPAIGN
    sender = _sender(env)
    try:
        for count in workers:
            out["runs"].append(_run_workers(env, sender, count, due, reps))
    finally:
        sender.close()
        truncate_all(url)
    base = out["runs"][0]["claims_per_s"] if out["runs"] else None
    for r in out["runs"]:
        r["speedup"] = round(r["claims_per_s"] / base, 2) if base else None
    return out


def _sender(env: BenchEnv) -> Celery:
    """A producer of the tasks app's scan queue, without importing the tasks package
    (whose settings would be this process's, not the bench's)."""
    app = Celery("bench-scan-sender", broker=env.redis_url)
    app.conf.update(
        task_serializer="json",
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
    )
    return app


def _worker_env(env: BenchEnv, count: int) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
    return {
        **base,
        "DIALER_HOME": str(env.settings.home.expanduser().resolve()),
        "DIALER_DATABASE_URL": env.database_url,
        "DIALER_REDIS_URL": env.redis_url,
        "DIALER_SCAN_PARTITIONS": str(PARTITIONS),
        "DIALER_SCAN_BATCH_SIZE": "500",  # as in the campaigns part
        "DIALER_WORKER_CONCURRENCY": str(count),
        "DIALER_DISPATCH_CHUNK_SIZE": str(DISPATCH_CHUNK),
        "DIALER_CLOCK_ANCHOR_REAL": datetime.now(UTC).isoformat(),
        "DIALER_CLOCK_ANCHOR_SIM": campaigns_bench.NOW.isoformat(),
        "DIALER_LOG_LEVEL": "WARNING",
        "DIALER_LOG_FORMAT": "json",
        **fixtures.LEGAL_ENV,
    }


def _run_workers(env: BenchEnv, sender: Celery, count: int, due: int, reps: int) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "tasks.app",
        "worker",
        "-Q",
        SCAN_QUEUE,
        "-c",
        str(count),
        "--loglevel",
        "WARNING",
        "-n",
        f"bench-scan-c{count}@%h",
    ]
    log_path = env.work_dir / f"scan-worker-c{count}.log"
    worker = procs.start(argv, _worker_env(env, count), log_path)
    broker = redis.Redis.from_url(env.redis_url)
    ticks: list[float] = []
    busy = 0.0
    try:
        with psycopg.connect(**env.conninfo, autocommit=True) as conn:
            poller = conn.info.backend_pid
            groups = {
                "workers": tree(psutil.Process(worker.pid)),
                "postgres": _backends_of(env, leave_out=poller),
            }
            cpu = dict.fromkeys(groups, 0.0)
            campaigns_bench.make_due(env.database_url)
            _tick(env, sender, broker, conn, due, WARMUP_TIMEOUT_S, worker.poll)
            for _ in range(reps):
                campaigns_bench.make_due(env.database_url)  # untimed, its CPU not counted
                before = {name: _cpu_by_pid(find) for name, find in groups.items()}
                busy_before = machine_busy_seconds()
                ticks.append(_tick(env, sender, broker, conn, due, TICK_TIMEOUT_S, worker.poll))
                busy += machine_busy_seconds() - busy_before
                for name, find in groups.items():
                    cpu[name] += _cpu_delta(before[name], _cpu_by_pid(find))
    finally:
        procs.stop(worker)
        broker.delete(*QUEUES)
        broker.close()
    tick = statistics.median(ticks)
    worker_cpu, pg_cpu = cpu["workers"] / reps, cpu["postgres"] / reps
    ours = cpu["workers"] + cpu["postgres"]
    timed = sum(ticks)
    return {
        "workers": count,
        "tick_median_ms": round(1000 * tick, 1),
        "tick_min_ms": round(1000 * min(ticks), 1),
        "tick_max_ms": round(1000 * max(ticks), 1),
        "reps": reps,
        "claimed_per_tick": due,
        "claims_per_s": round(due / tick, 1),
        "worker_cpu_s_per_tick": round(worker_cpu, 3),
        "postgres_cpu_s_per_tick": round(pg_cpu, 3),
        "postgres_cpu_share": round(pg_cpu / (pg_cpu + worker_cpu), 3) if ours else None,
        "busy_cores": round(busy / timed, 2),
        "foreign_cores": round(max(0.0, busy - ours) / timed, 2),
        "worker_log": str(log_path),
    }


def _cpu_by_pid(find: Finder) -> dict[int, float]:
    out: dict[int, float] = {}
    for proc in find():
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[proc.pid] = times.user + times.system
    return out


def _cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two snapshots; a process born in between counts from zero."""
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def _tick(
    env: BenchEnv,
    sender: Celery,
    broker: redis.Redis,
    conn: psycopg.Connection[Any],
    due: int,
    timeout: float,
    exited: Callable[[], int | None],
) -> float:
    """Publish the partitions of `due` due attempts, wait until all are queued."""
    broker.delete("dispatch")  # the last tick's claims: nobody dispatches them here
    queue = Queue(SCAN_QUEUE, routing_key=SCAN_QUEUE)
    started = time.perf_counter()
    for index in range(PARTITIONS):
        sender.send_task(
            "dialer.scan_partition", args=[index, PARTITIONS], queue=queue, routing_key=SCAN_QUEUE
        )
    while True:
        row = conn.execute("SELECT count(*) FROM call_attempts WHERE status = 'queued'").fetchone()
        if row is not None and row[0] >= due:
            return time.perf_counter() - started
        if exited() is not None:
            raise RuntimeError("the scan worker exited; see its log in the bench work dir")
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{row[0] if row else 0} of {due} claimed after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _backends_of(env: BenchEnv, leave_out: int) -> Finder:
    """The PostgreSQL backends serving the bench database (not other sessions' work),
    but for the bench's own poll (`leave_out`)."""
    root = postmaster(env)
    database = f" {env.conninfo['dbname']} "

    def find() -> list[psutil.Process]:
        if root is None:
            return []
        found = []
        try:
            children = root.children()
        except psutil.Error:
            return []
        for proc in children:
            if proc.pid == leave_out:
                continue
            try:
                if database in " ".join(proc.cmdline()) + " ":
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    return find
