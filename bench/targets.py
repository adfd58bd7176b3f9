"""The targets, checked against what was measured (nothing here is hard-coded as met)."""

from __future__ import annotations

import os
from itertools import pairwise
from typing import Any

THROUGHPUT_TARGET = 1000.0  # attempts/s on 2 cores
FLAT_RATIO = 1.5  # largest/smallest median scan time that still counts as flat
P99_TARGET_MS = 2000.0  # due-to-dispatch p99
IMPORT_ROWS_PER_S = 50_000  # issue 15: CSV import of 1M rows
IMPORT_RSS_MB = 300.0
START_SECONDS = 60.0  # all first attempts of a 1M-contact campaign
SEARCH_P99_MS = 200.0  # GET /calls with q (issue 15 asks it at 5M attempts)


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    tp = results.get("throughput")
    if tp:
        runs = {f"celery -c {n}": r for n, r in tp.get("celery", {}).items()}
        rates = {k: r.get("attempts_per_s") for k, r in runs.items()}
        known = [v for v in rates.values() if v is not None]
        best = max(known) if known else None
        out.append(
            {
                "target": f">= {THROUGHPUT_TARGET:,.0f} attempts/s end to end on 2 cores",
                "measured": ", ".join(f"{k}: {v}" for k, v in rates.items()),
                "best": best,
                "met": None if best is None else best >= THROUGHPUT_TARGET,
            }
        )
        p99s = {k: r.get("latency", {}).get("eligible", {}).get("p99_ms") for k, r in runs.items()}
        known_p99 = [v for v in p99s.values() if v is not None]
        out.append(
            {
                "target": f"p99 due-to-dispatch < {P99_TARGET_MS / 1000:.0f} s",
                "measured": ", ".join(f"{k}: {v} ms" for k, v in p99s.items()),
                "worst": max(known_p99) if known_p99 else None,
                "met": None if not known_p99 else max(known_p99) < P99_TARGET_MS,
            }
        )
    scan = results.get("scan")
    if scan and scan.get("levels"):
        levels = scan["levels"]
        span = f"{levels[0]['enrollments']:,} -> {levels[-1]['enrollments']:,}"
        index_everywhere = all(level["due_index_used"] for level in levels)
        ratio = scan["ratio_last_first"]
        out.append(
            {
                "target": f"scan tick flat {span} (ratio <= {FLAT_RATIO}x, due index used)",
                "measured": " / ".join(f"{lv['scan']['median_ms']} ms" for lv in levels)
                + f"  (ratio {ratio}x, index {'used' if index_everywhere else 'NOT used'})",
                "met": ratio <= FLAT_RATIO and index_everywhere,
            }
        )
        capped = scan["ratio_last_first_daily_cap"]
        out.append(
            {
                "target": f"same, campaign with max_calls_per_day set ({span})",
                "measured": " / ".join(f"{lv['scan_daily_cap']['median_ms']} ms" for lv in levels)
                + f"  (ratio {capped}x)",
                "met": capped <= FLAT_RATIO,
            }
        )
    out += _campaign_targets(results.get("campaigns"))
    out += _partition_targets(results.get("partitions"))
    fair = results.get("fairness")
    if fair and "fair" in fair:
        p99 = fair["fair"]["small_p99_s"]
        out.append(
            {
                "target": f"fairness: the {fair['small']}-contact campaign's p99 due-to-dispatch "
                f"< {FAIR_P99_TARGET_S:.0f} s beside a {fair['big']:,}-contact one",
                "measured": f"{p99} s (unbounded: {fair['unbounded']['small_p99_s']} s)",
                "met": p99 is not None and p99 < FAIR_P99_TARGET_S,
            }
        )
    return out + _bigdata(results)


def _bigdata(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    imports = (results.get("import") or {}).get("levels") or []
    if imports:
        big = imports[-1]
        out.append(
            {
                "target": f"CSV import of {big['rows']:,} rows >= {IMPORT_ROWS_PER_S:,} rows/s, "
                f"peak RSS < {IMPORT_RSS_MB:.0f} MB",
                "measured": f"{big['rows_per_s']:,} rows/s, {big['peak_rss_mb']} MB",
                "met": big["rows_per_s"] >= IMPORT_ROWS_PER_S
                and big["peak_rss_mb"] < IMPORT_RSS_MB,
            }
        )
    starts = (results.get("start") or {}).get("levels") or []
    if starts:
        big = starts[-1]
        duplicates = sum(r["duplicates"] for r in big["runs"])
        out.append(
            {
                "target": f"start of {big['enrollments']:,} enrollments: all first attempts "
                f"<= {START_SECONDS:.0f} s, no duplicates",
                "measured": f"{big['median_s']} s, {duplicates} duplicates",
                "met": big["median_s"] <= START_SECONDS and duplicates == 0,
            }
        )
    search = results.get("search")
    if search and search.get("variants"):
        label, found = next(iter(search["variants"].items()))
        worst = max(term["p99_ms"] for term in found.values())
        out.append(
            {
                "target": f"GET /calls q p99 < {SEARCH_P99_MS:.0f} ms "
                f"(at {search['attempts']:,} attempts; the issue asks 5M)",
                "measured": f"worst term p99 {worst} ms ({label})",
                "met": worst < SEARCH_P99_MS,
            }
        )
    return out


FAIR_P99_TARGET_S = 5.0


IDLE_TICK_TARGET_MS = 100.0
CLAIM_TICK_TARGET_MS = 2000.0


def _campaign_targets(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not data or not data.get("levels"):
        return []
    first, last = data["levels"][0], data["levels"][-1]
    n = f"{last['campaigns']:,}"
    idle, claiming = last["idle"]["median_ms"], last["claiming"]["median_ms"]
    return [
        {
            "target": f"idle scan tick at {n} campaigns <= {IDLE_TICK_TARGET_MS:.0f} ms and "
            f"<= {FLAT_RATIO}x the {first['campaigns']:,}-campaign figure",
            "measured": f"{idle} ms ({data['ratio_idle_last_first']}x)",
            "met": idle <= IDLE_TICK_TARGET_MS and data["ratio_idle_last_first"] <= FLAT_RATIO,
        },
        {
            "target": f"scan tick claiming 5 in each of {n} campaigns <= "
            f"{CLAIM_TICK_TARGET_MS / 1000:.0f} s",
            "measured": f"{claiming} ms, claimed {last['claiming']['claimed']}",
            "met": claiming <= CLAIM_TICK_TARGET_MS,
        },
        {
            "target": f"finish tick flat in running campaigns (ratio <= {FLAT_RATIO}x)",
            "measured": " / ".join(f"{lv['finish']['median_ms']} ms" for lv in data["levels"])
            + f" ({data['ratio_finish_last_first']}x)",
            "met": data["ratio_finish_last_first"] <= FLAT_RATIO,
        },
    ]


def _partition_targets(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The claiming tick as a deployment runs it: partition tasks on several workers."""
    if not data or not data.get("runs"):
        return []
    best = min(data["runs"], key=lambda r: r["tick_median_ms"])
    n = f"{data['campaigns']:,}"
    return [
        {
            "target": f"scan tick claiming 5 in each of {n} campaigns <= "
            f"{CLAIM_TICK_TARGET_MS / 1000:.0f} s ({data['partitions']} partition tasks, "
            "real Celery workers)",
            "measured": " / ".join(
                f"{r['workers']} proc: {r['tick_median_ms']} ms" for r in data["runs"]
            ),
            "best": best["tick_median_ms"],
            "met": best["tick_median_ms"] <= CLAIM_TICK_TARGET_MS,
        },
        {
            "target": "partitioned scan: claims/s grow with worker processes until "
            "PostgreSQL is the limit",
            "measured": " / ".join(
                f"{r['workers']}: {r['claims_per_s']:,.0f}/s (PG {r['postgres_cpu_share']})"
                for r in data["runs"]
            ),
            "met": _grows_until_pg_bound(data["runs"]),
        },
    ]


def _grows_until_pg_bound(runs: list[dict[str, Any]]) -> bool:
    """Each step up in workers is faster, or the machine was already full (busy cores at
    FULL_MACHINE of the core count, foreign load included: PostgreSQL and the workers
    then share CPUs that have nothing left to give)."""
    for before, after in pairwise(runs):
        if after["claims_per_s"] > before["claims_per_s"]:
            continue
        if before["busy_cores"] < FULL_MACHINE * _CORES:
            return False
    return True


_CORES = float(os.cpu_count() or 1)
FULL_MACHINE = 0.85
