"""``python -m bench``: run the parts, print figures with rich, write bench/results/latest.json."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from bench import (
    bigdata,
    campaigns_bench,
    fairness_bench,
    partition_bench,
    pg_raw,
    procs,
    report,
    scan_bench,
    suppression_bench,
    targets,
    throughput,
)
from bench import env as bench_env

PARTS = (
    "pg",
    "throughput",
    "scan",
    "campaigns",
    "partitions",
    "fairness",
    "suppressions",
    "import",
    "start",
    "search",
)
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Config:
    quick: bool = False
    pg_seconds: float = 3.0
    pgbench_seconds: int = 5
    customers: int = 5000
    concurrency: int = 1000  # the campaign maximum: the pipeline, not the cap, is measured
    workers: tuple[int, ...] = (1, 2)
    scan_interval_s: float = 0.2
    dispatch_chunk: int = 250
    call_seconds: float = 0.2
    run_seconds: float = 40.0
    scan_levels: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    scan_reps: int = 15
    suppression_numbers: int = 1_000_000
    campaign_levels: tuple[int, ...] = (10, 100, 1_000, 10_000)
    campaign_reps: int = 5
    partition_campaigns: int = 10_000
    partition_workers: tuple[int, ...] = (1, 2, 4)
    import_rows: tuple[int, ...] = (100_000, 1_000_000)
    start_enrollments: tuple[int, ...] = (1_000_000,)
    search_attempts: int = 1_000_000
    bigdata_reps: int = 2  # import and start runs per level (the median is reported)
    search_reps: int = 30
    profile: bool = False

    @classmethod
    def quick_config(cls) -> Config:
        return cls(
            quick=True,
            pg_seconds=1.0,
            pgbench_seconds=2,
            customers=3000,
            run_seconds=10.0,
            scan_levels=(10_000, 100_000),
            scan_reps=7,
            suppression_numbers=200_000,
            campaign_reps=3,
            partition_campaigns=1_000,
            import_rows=(20_000,),
            start_enrollments=(50_000,),
            search_attempts=100_000,
            bigdata_reps=1,
            search_reps=10,
        )


def parse(argv: list[str] | None) -> tuple[Config, set[str], Path, bool]:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a smaller version (~1-2 min)")
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"run only these parts: {', '.join(PARTS)} (comma list or repeated)",
    )
    ap.add_argument("--customers", type=int, help="customers in the throughput campaign")
    ap.add_argument("--workers", help="Celery worker process counts, e.g. 1,2")
    ap.add_argument("--run-seconds", type=float, help="time box per throughput run")
    ap.add_argument("--call-seconds", type=float, help="simulated ring time of every call")
    ap.add_argument("--scan-interval", type=float, help="DIALER_SCAN_INTERVAL_SECONDS")
    ap.add_argument("--dispatch-chunk", type=int, help="DIALER_DISPATCH_CHUNK_SIZE (250)")
    ap.add_argument("--scan-levels", help="enrollment counts, e.g. 10000,100000,1000000")
    ap.add_argument("--campaign-levels", help="running campaigns, e.g. 10,100,1000,10000")
    ap.add_argument("--campaign-reps", type=int, help="repetitions per campaigns figure")
    ap.add_argument("--partition-campaigns", type=int, help="running campaigns, partitions part")
    ap.add_argument("--partition-workers", help="scan worker process counts, e.g. 1,2,4")
    ap.add_argument("--import-rows", help="CSV rows per import level, e.g. 100000,1000000")
    ap.add_argument("--start-enrollments", help="enrollments per start level, e.g. 1000000")
    ap.add_argument("--search-attempts", type=int, help="attempts under the q search")
    ap.add_argument("--bigdata-reps", type=int, help="runs per import/start level (2)")
    ap.add_argument("--search-reps", type=int, help="timed queries per q term (30)")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also profile: py-spy on the Celery workers (PY_SPY or PATH), cProfile in-process",
    )
    ap.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    ap.add_argument("--keep-db", action="store_true", help="keep dialer_bench afterwards")
    args = ap.parse_args(argv)
    cfg = Config.quick_config() if args.quick else Config()
    changes: dict[str, Any] = {"profile": args.profile}
    if args.customers:
        changes["customers"] = args.customers
    if args.workers:
        changes["workers"] = tuple(int(x) for x in args.workers.split(",") if x)
    if args.run_seconds:
        changes["run_seconds"] = args.run_seconds
    if args.call_seconds is not None:
        changes["call_seconds"] = args.call_seconds
    if args.scan_interval:
        changes["scan_interval_s"] = args.scan_interval
    if args.dispatch_chunk:
        changes["dispatch_chunk"] = args.dispatch_chunk
    if args.scan_levels:
        changes["scan_levels"] = tuple(int(x) for x in args.scan_levels.split(",") if x)
    if args.campaign_levels:
        changes["campaign_levels"] = tuple(int(x) for x in args.campaign_levels.split(",") if x)
    if args.campaign_reps:
        changes["campaign_reps"] = args.campaign_reps
    if args.partition_campaigns:
        changes["partition_campaigns"] = args.partition_campaigns
    if args.partition_workers:
        changes["partition_workers"] = tuple(int(x) for x in args.partition_workers.split(",") if x)
    if args.import_rows:
        changes["import_rows"] = tuple(int(x) for x in args.import_rows.split(",") if x)
    if args.start_enrollments:
        changes["start_enrollments"] = tuple(int(x) for x in args.start_enrollments.split(",") if x)
    if args.search_attempts:
        changes["search_attempts"] = args.search_attempts
    if args.bigdata_reps:
        changes["bigdata_reps"] = args.bigdata_reps
    if args.search_reps:
        changes["search_reps"] = args.search_reps
    parts = {p.strip() for chunk in args.only for p in chunk.split(",") if p.strip()}
    unknown = parts - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; choose from {', '.join(PARTS)}")
    return replace(cfg, **changes), parts or set(PARTS), args.output, args.keep_db


def main(argv: list[str] | None = None) -> int:
    cfg, parts, output, keep_db = parse(argv)
    # Wide when piped (rich would fall back to 80 columns and wrap every table).
    console = Console(width=None if sys.stdout.isatty() else 170)
    procs.install_cleanup()
    began = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "parts": sorted(parts, key=PARTS.index),
            "config": asdict(cfg),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "loadavg_at_start": [round(x, 2) for x in psutil.getloadavg()],
        },
        "timings_s": {},
    }
    env: bench_env.BenchEnv | None = None
    status = 0
    try:
        with console.status("preparing dialer_bench (drop, create, migrate) and Redis db 13"):
            env = bench_env.prepare()
        results["meta"]["servers"] = env.describe()
        results["meta"]["postgres"] = bench_env.server_settings(env)
        console.print(f"[dim]servers: {env.describe()}[/dim]")
        if "pg" in parts:
            t0 = time.perf_counter()
            with console.status("raw PostgreSQL transaction rate"):
                results["pg"] = pg_raw.run(env, cfg.pg_seconds, cfg.pgbench_seconds)
            results["timings_s"]["pg"] = round(time.perf_counter() - t0, 1)
            report.pg(console, results["pg"])
        elif "throughput" in parts:  # the ratio needs a denominator: a short one
            with console.status("raw PostgreSQL transaction rate (short, for the ratio)"):
                results["pg"] = {"psycopg": pg_raw.psycopg_loop(env, 1.5), "short": True}
                results["pg"]["denominator_tps"] = results["pg"]["psycopg"]["tps"]
        if "throughput" in parts:
            t0 = time.perf_counter()
            params = throughput.Params(
                customers=cfg.customers,
                concurrency=cfg.concurrency,
                scan_interval_s=cfg.scan_interval_s,
                call_seconds=cfg.call_seconds,
                run_seconds=cfg.run_seconds,
                dispatch_chunk=cfg.dispatch_chunk,
            )
            results["throughput"] = _throughput(console, env, params, cfg)
            results["timings_s"]["throughput"] = round(time.perf_counter() - t0, 1)
            report.throughput(console, results["throughput"], results["pg"]["denominator_tps"])
        if "scan" in parts:
            t0 = time.perf_counter()
            with console.status(f"scan tick at {', '.join(f'{n:,}' for n in cfg.scan_levels)}"):
                results["scan"] = scan_bench.run(env, cfg.scan_levels, cfg.scan_reps)
            results["timings_s"]["scan"] = round(time.perf_counter() - t0, 1)
            report.scan(console, results["scan"])
        if "suppressions" in parts:
            t0 = time.perf_counter()
            with console.status(f"do-not-contact list: load {cfg.suppression_numbers:,}, scan"):
                results["suppressions"] = suppression_bench.run(
                    env, cfg.suppression_numbers, cfg.scan_reps
                )
            results["timings_s"]["suppressions"] = round(time.perf_counter() - t0, 1)
            report.suppressions(console, results["suppressions"])
        if "campaigns" in parts:
            t0 = time.perf_counter()
            levels = ", ".join(f"{n:,}" for n in cfg.campaign_levels)
            with console.status(f"beat duties at {levels} running campaigns"):
                results["campaigns"] = campaigns_bench.run(
                    env, cfg.campaign_levels, cfg.campaign_reps
                )
            results["timings_s"]["campaigns"] = round(time.perf_counter() - t0, 1)
            report.campaigns(console, results["campaigns"])
        if "partitions" in parts:
            t0 = time.perf_counter()
            counts = ", ".join(str(n) for n in cfg.partition_workers)
            with console.status(
                f"partitioned scan of {cfg.partition_campaigns:,} campaigns on {counts} workers"
            ):
                results["partitions"] = partition_bench.run(
                    env, cfg.partition_campaigns, cfg.partition_workers, cfg.campaign_reps
                )
            results["timings_s"]["partitions"] = round(time.perf_counter() - t0, 1)
            report.partitions(console, results["partitions"])
        if "fairness" in parts:
            t0 = time.perf_counter()
            with console.status("fairness: 100k and 100 contacts under a shared rate limit"):
                results["fairness"] = fairness_bench.run(env)
            results["timings_s"]["fairness"] = round(time.perf_counter() - t0, 1)
            report.fairness(console, results["fairness"])
        _bigdata(console, env, cfg, parts, results)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping what the bench started[/yellow]")
        status = 130
    finally:
        procs.stop_all()
        if env is not None and not keep_db:
            try:
                bench_env.drop_bench_database(env)
                bench_env.flush_redis(env.redis_url)
            except Exception as exc:  # cleanup is best effort
                console.print(f"[yellow]cleanup: {exc}[/yellow]")
    results["timings_s"]["total"] = round(time.perf_counter() - began, 1)
    results["targets"] = targets.evaluate(results)
    report.targets(console, results["targets"], results["timings_s"])
    if status != 0:  # keep the last complete run's figures
        results["meta"]["interrupted"] = True
        output = output.with_name("interrupted.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"[dim]written {_rel(output)}[/dim]")
    return status


def _throughput(
    console: Console, env: bench_env.BenchEnv, p: throughput.Params, cfg: Config
) -> dict[str, Any]:
    out: dict[str, Any] = throughput.describe(env, p)
    out["celery"] = {}
    for n in cfg.workers:
        with console.status(f"Celery: {n} worker process(es) + beat, up to {p.run_seconds:.0f} s"):
            out["celery"][str(n)] = throughput.run_celery(env, p, n)
    with console.status(f"in-process driver, up to {p.run_seconds:.0f} s"):
        out["inprocess"] = throughput.run_inprocess(env, p)
    if cfg.profile:
        short = replace(p, run_seconds=min(p.run_seconds, 15.0))
        n = max(cfg.workers)
        with console.status(f"profiling: py-spy on {n} Celery worker process(es)"):
            out["profile_celery"] = throughput.run_celery(env, short, n, pyspy=True)
        with console.status("profiling: cProfile of the in-process driver"):
            out["profile_inprocess"] = throughput.run_inprocess(env, short, profile=True)
    return out


def _bigdata(
    console: Console,
    env: bench_env.BenchEnv,
    cfg: Config,
    parts: set[str],
    results: dict[str, Any],
) -> None:
    """The other big-N paths (bench.bigdata): import, start, search."""
    if "import" in parts:
        t0 = time.perf_counter()
        with console.status(f"CSV import of {', '.join(f'{n:,}' for n in cfg.import_rows)} rows"):
            results["import"] = bigdata.run_import(env, cfg.import_rows, cfg.bigdata_reps)
        results["timings_s"]["import"] = round(time.perf_counter() - t0, 1)
        report.csv_import(console, results["import"])
    if "start" in parts:
        t0 = time.perf_counter()
        levels = ", ".join(f"{n:,}" for n in cfg.start_enrollments)
        with console.status(f"start of a campaign of {levels} enrollments"):
            results["start"] = bigdata.run_start(env, cfg.start_enrollments, cfg.bigdata_reps)
        results["timings_s"]["start"] = round(time.perf_counter() - t0, 1)
        report.start(console, results["start"])
    if "search" in parts:
        t0 = time.perf_counter()
        with console.status(f"GET /calls q search at {cfg.search_attempts:,} attempts"):
            results["search"] = bigdata.run_search(env, cfg.search_attempts, cfg.search_reps)
        results["timings_s"]["search"] = round(time.perf_counter() - t0, 1)
        report.search(console, results["search"])


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
