"""Rich tables for each part, and the targets."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table


def _f(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pg(console: Console, data: dict[str, Any]) -> None:
    table = Table(title="PostgreSQL single-row transactions (BEGIN; UPDATE 1 row; COMMIT)")
    for col in ("client", "tps", "mean latency ms", "clients", "client CPU us/txn", "note"):
        table.add_column(col, justify="right" if col != "note" and col != "client" else "left")
    rows = (
        ("psycopg loop", data.get("psycopg")),
        ("models.session.transaction()", data.get("sqlalchemy")),
        ("ORM session, no pre-ping", data.get("sqlalchemy_no_ping")),
        ("pgbench", data.get("pgbench")),
    )
    for name, row in rows:
        if not row:
            continue
        if "skipped" in row:
            table.add_row(name, "-", "-", "-", "-", row["skipped"])
            continue
        clients = row.get("threads", row.get("clients"))
        table.add_row(
            name,
            _f(row.get("tps")),
            _f(row.get("mean_latency_ms"), 3),
            _f(clients),
            _f(row.get("client_cpu_us_per_txn")),
            "denominator" if name == "psycopg loop" else "",
        )
    console.print(table)


def throughput(console: Console, data: dict[str, Any], denominator: float | None) -> None:
    params = data.get("params", {})
    console.print(
        f"[bold]Throughput[/bold]: {params.get('customers'):,} customers, concurrency "
        f"{params.get('concurrency')}, scan interval {params.get('scan_interval_s')} s, calls "
        f"ring {params.get('call_seconds')} s, no retries; time box {params.get('run_seconds')} s"
    )
    table = Table(title="Attempts per second: claim -> dispatch -> result applied")
    cols = (
        "run",
        "done",
        "attempts/s",
        "steady/s",
        "x raw PG tps",
        "commits/att",
        "app CPU ms/att",
        "PG CPU ms/att",
        "CPU ceiling/s",
        "C/W bound/s",
        "campaign row locked",
        "other load (cores)",
    )
    for col in cols:
        table.add_column(col, justify="left" if col == "run" else "right")
    runs: list[tuple[str, dict[str, Any]]] = [
        (f"celery -c {n}", r) for n, r in data.get("celery", {}).items()
    ]
    if "inprocess" in data:
        runs.append(("in-process driver", data["inprocess"]))
    for name, r in runs:
        per = r.get("per_attempt", {})
        rate = r.get("attempts_per_s")
        app_cpu = per.get("cpu_ms_workers", per.get("cpu_ms_bench_process"))
        commits = per.get("commits", per.get("pg_commits"))
        lat = r.get("latency", {})
        table.add_row(
            name + (" (time-boxed)" if r.get("time_boxed") else ""),
            f"{_f(r.get('attempts_done'))}/{_f(r.get('attempts_total', r.get('customers')))}",
            _f(rate),
            _f(r.get("steady_attempts_per_s")),
            f"{rate / denominator:.4f}" if rate and denominator else "-",
            _f(commits, 2),
            _f(app_cpu),
            _f(per.get("cpu_ms_postgres")),
            _f(per.get("cpu_ceiling_attempts_per_s")),
            _f(lat.get("concurrency_bound_attempts_per_s")),
            f"{_f(r.get('campaign_lock', {}).get('campaign_row_locked_pct'))} %"
            if r.get("campaign_lock")
            else "-",
            _f(r.get("machine", {}).get("foreign_cores"), 2),
        )
    console.print(table)
    console.print(
        "[dim]CPU ceiling: cores x 1000 / CPU ms per attempt of every process (app, beat,"
        " PostgreSQL, Redis), i.e. the rate this code could reach with both cores to itself."
        " C/W bound: concurrency / mean claim-to-result time (Little's law)."
        " Campaign row locked: share of probes where SELECT ... FOR UPDATE SKIP LOCKED on the"
        " campaign (what scan_campaign does) found it locked, so a scan tick would claim"
        " nothing.[/dim]"
    )
    for n, r in data.get("celery", {}).items():
        holders = r.get("campaign_lock", {}).get("holders") or {}
        if holders:
            top = "; ".join(f"{k} x{v}" for k, v in list(holders.items())[:4])
            console.print(f"[dim]celery -c {n}: campaign row held by (pgrowlocks): {top}[/dim]")
    _latency(console, data)
    _memory(console, data)
    _inprocess_sql(console, data.get("inprocess"))
    for key in ("profile_celery", "profile_inprocess"):
        if key in data:
            _profile(console, key, data[key])


def _latency(console: Console, data: dict[str, Any]) -> None:
    table = Table(title="Due-to-dispatch latency (Celery runs), ms")
    for col in ("run", "measure", "n", "p50", "p90", "p99", "max"):
        table.add_column(col, justify="left" if col in ("run", "measure") else "right")
    labels = {
        "eligible": "dispatched - max(scheduled, slot free)",
        "claim_to_dispatch": "dispatched - claimed (queued_at)",
        "since_scheduled": "dispatched - scheduled (backlog incl.)",
        "claim_to_release": "claimed - result applied",
    }
    for n, r in data.get("celery", {}).items():
        for key, label in labels.items():
            s = r.get("latency", {}).get(key)
            if not s:
                continue
            table.add_row(
                f"celery -c {n}",
                label,
                _f(s["n"]),
                _f(s["p50_ms"]),
                _f(s["p90_ms"]),
                _f(s["p99_ms"]),
                _f(s["max_ms"]),
            )
    console.print(table)


def _memory(console: Console, data: dict[str, Any]) -> None:
    table = Table(title="Peak RSS (psutil samples every 0.2 s), MB")
    for col in ("run", "workers sum", "per worker process", "beat", "PostgreSQL sum", "Redis"):
        table.add_column(col, justify="left" if col in ("run", "per worker process") else "right")
    for n, r in data.get("celery", {}).items():
        res = r.get("resources", {})
        workers = res.get("workers", {})
        per = ", ".join(
            f"{p['role']} {p['peak_rss_mb']} (cpu {p['cpu_s']} s)"
            for p in workers.get("peak_rss_per_process_mb", [])
        )
        table.add_row(
            f"celery -c {n}",
            _f(workers.get("peak_rss_sum_mb")),
            per,
            _f(res.get("beat", {}).get("peak_rss_sum_mb")),
            _f(res.get("postgres", {}).get("peak_rss_sum_mb")),
            _f(res.get("redis", {}).get("peak_rss_sum_mb")),
        )
    console.print(table)


def _inprocess_sql(console: Console, r: dict[str, Any] | None) -> None:
    if not r or "sql" not in r:
        return
    sql = r["sql"]
    table = Table(
        title=(
            f"In-process: {sql['statements_per_attempt']} statements and "
            f"{sql['commits_per_attempt']} commits per attempt; "
            f"{sql['sql_wall_share_pct']} % of wall time in cursor.execute"
        )
    )
    for col in ("statement", "per attempt", "ms per attempt"):
        table.add_column(col, justify="left" if col == "statement" else "right")
    for row in sql["top_statements"][:12]:
        table.add_row(
            row["statement"][:110], _f(row["per_attempt"], 2), _f(row["ms_per_attempt"], 3)
        )
    console.print(table)


def _profile(console: Console, key: str, r: dict[str, Any]) -> None:
    if "pyspy" in r:
        spy = r["pyspy"]
        if "skipped" in spy:
            console.print(f"[yellow]py-spy: {spy['skipped']}[/yellow]")
            return
        table = Table(
            title=f"py-spy, Celery worker processes in tasks ({spy['busy_share_pct']} % busy)"
        )
        table.add_column("where the time goes (leaf frame)")
        table.add_column("%", justify="right")
        for name, pct in spy["by_category_pct"].items():
            table.add_row(name, _f(pct))
        for row in spy["top_project_inclusive_pct"][:15]:
            table.add_row(f"  incl. {row['function']}", _f(row["pct"]))
        console.print(table)
    if "cprofile" in r:
        prof = r["cprofile"]
        table = Table(title=f"cProfile, in-process driver ({prof['total_self_s']} s)")
        for col in ("function", "calls", "self s", "cumulative s"):
            table.add_column(col, justify="left" if col == "function" else "right")
        for row in prof["top_cumulative_project"][:15]:
            table.add_row(
                row["function"], _f(row["calls"]), _f(row["self_s"], 3), _f(row["cumulative_s"], 3)
            )
        console.print(table)


def scan(console: Console, data: dict[str, Any]) -> None:
    table = Table(
        title=f"Scan tick: one scan_campaign transaction claiming {data['due_per_scan']} due"
    )
    cols = (
        "enrollments",
        "load s",
        "median ms",
        "min ms",
        "claimed",
        "lock_due ms",
        "due index",
        "daily cap: median ms",
        "claimed_today ms",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for level in data["levels"]:
        s, c = level["scan"], level["scan_daily_cap"]
        table.add_row(
            _f(level["enrollments"]),
            _f(level["load_s"]),
            _f(s["median_ms"], 2),
            _f(s["min_ms"], 2),
            ",".join(str(x) for x in s["claimed"]),
            _f(s["statement_ms_last_rep"].get("lock_due (SELECT ... FOR UPDATE SKIP LOCKED)"), 2),
            "yes" if level["due_index_used"] else "NO",
            _f(c["median_ms"], 2),
            _f(c["statement_ms_last_rep"].get("claimed_today count (daily cap)"), 2),
        )
    console.print(table)
    console.print(
        f"ratio largest/smallest: {data['ratio_last_first']}x; "
        f"with max_calls_per_day: {data['ratio_last_first_daily_cap']}x"
    )
    last = data["levels"][-1]
    if last.get("explain_lock_due"):
        console.print(
            Panel(
                last["explain_lock_due"],
                title=f"EXPLAIN (ANALYZE, BUFFERS) lock_due at {last['enrollments']:,}",
                expand=False,
            )
        )
    if last.get("explain_claimed_today"):
        console.print(
            Panel(
                last["explain_claimed_today"],
                title=f"EXPLAIN (ANALYZE, BUFFERS) _claimed_today at {last['enrollments']:,}",
                expand=False,
            )
        )


def csv_import(console: Console, data: dict[str, Any]) -> None:
    table = Table(title="dialer customers import --partial (a subprocess; 1% bad rows)")
    for col in ("rows", "file MB", "median s", "rows/s", "peak RSS MB", "enrolled", "rejected"):
        table.add_column(col, justify="right")
    table.add_column("load (1/5/15 min)")
    for level in data["levels"]:
        last = level["runs"][-1]
        table.add_row(
            _f(level["rows"]),
            _f(level["file_mb"]),
            _f(level["median_s"], 2),
            _f(level["rows_per_s"]),
            _f(level["peak_rss_mb"]),
            _f(last["enrolled"]),
            _f(last["rejected_rows_file"]),
            " ".join(str(x) for x in level["load_at_end"]),
        )
    console.print(table)


def start(console: Console, data: dict[str, Any]) -> None:
    table = Table(title="Start: campaign.started handler until every enrollment has its attempt")
    cols = ("enrollments", "median s", "attempts/s", "attempts", "duplicates", "RSS growth MB")
    for col in cols:
        table.add_column(col, justify="right")
    table.add_column("load (1/5/15 min)")
    for level in data["levels"]:
        last = level["runs"][-1]
        table.add_row(
            _f(level["enrollments"]),
            _f(level["median_s"], 2),
            _f(level["attempts_per_s"]),
            _f(last["attempts"]),
            _f(last["duplicates"]),
            _f(max(r["rss_growth_mb"] for r in level["runs"])),
            " ".join(str(x) for x in level["load_at_end"]),
        )
    console.print(table)


def search(console: Console, data: dict[str, Any]) -> None:
    variants = data["variants"]
    table = Table(title=f"GET /calls?q= at {data['attempts']:,} attempts (list_calls, limit 10)")
    table.add_column("term")
    table.add_column("total", justify="right")
    for label in variants:
        table.add_column(f"{label}: p50 / p99 ms", justify="right")
    first = next(iter(variants.values()))
    for term in first:
        cells = [
            f"{_f(v[term]['p50_ms'], 1)} / {_f(v[term]['p99_ms'], 1)}" for v in variants.values()
        ]
        table.add_row(term, ",".join(str(t) for t in first[term]["total"]), *cells)
    console.print(table)
    for label, found in variants.items():
        term = next(iter(found))
        console.print(
            Panel(found[term]["explain"], title=f"EXPLAIN (ANALYZE, BUFFERS) page, {term}, {label}")
        )


def targets(console: Console, rows: list[dict[str, Any]], timings: dict[str, Any]) -> None:
    if not rows:
        console.print(f"[dim]no targets for these parts; timings (s): {timings}[/dim]")
        return
    table = Table(title="Targets")
    for col in ("target", "measured", "met"):
        table.add_column(col)
    for row in rows:
        met = row["met"]
        mark = "[green]MET[/green]" if met else "[red]NOT MET[/red]" if met is False else "-"
        table.add_row(row["target"], row["measured"], mark)
    console.print(table)
    console.print(f"[dim]timings (s): {timings}[/dim]")


def suppressions(console: Console, data: dict[str, Any]) -> None:
    load = data["load"]
    table = Table(title="Do-not-contact list: load, then the scan against it")
    for col in ("figure", "value"):
        table.add_column(col, justify="right")
    table.add_row("numbers loaded", _f(load["numbers"]))
    table.add_row("load seconds", _f(load["seconds"], 2))
    table.add_row("load rows/s", _f(load["rows_per_s"]))
    table.add_row("loader RSS growth MB", _f(load["rss_growth_mb"], 1))
    empty, full = data["scan_empty_list"], data["scan_full_list"]
    table.add_row(f"scan ms, {data['due']} due, empty list", _f(empty["median_ms"], 2))
    table.add_row(
        f"scan ms, {data['due']} due, {load['numbers']:,} listed", _f(full["median_ms"], 2)
    )
    table.add_row("ratio full / empty", _f(data["scan_ratio_full_empty"], 2))
    ten = data["scan_ten_due_listed"]
    table.add_row(
        "10 due listed: claimed / closed",
        f"{','.join(map(str, ten['claimed']))} / {','.join(map(str, ten['suppressed']))}",
    )


def campaigns(console: Console, data: dict[str, Any]) -> None:
    table = Table(
        title=f"Beat duties across running campaigns ({data['customers_per_campaign']} customers "
        f"each, {data['campaigns_per_account']} campaigns per account), median ms"
    )
    cols = (
        "campaigns",
        "load s",
        "scan, nothing due",
        "scan, claiming 5 each",
        "claimed",
        "4 partitions: slowest",
        "finish tick",
        "finish sweep (slow duty)",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for lv in data["levels"]:
        table.add_row(
            _f(lv["campaigns"]),
            _f(lv["load_s"]),
            _f(lv["idle"]["median_ms"], 2),
            _f(lv["claiming"]["median_ms"], 2),
            ",".join(str(x) for x in lv["claiming"]["claimed"]),
            _f(lv.get("partitions_4", {}).get("slowest_partition_median_ms"), 2),
            _f(lv["finish"]["median_ms"], 2),
            _f(lv.get("finish_sweep", {}).get("median_ms"), 2),
        )
    console.print(table)
    console.print(
        f"ratio largest/smallest: idle {data['ratio_idle_last_first']}x, "
        f"claiming {data['ratio_claiming_last_first']}x, finish {data['ratio_finish_last_first']}x"
    )


def partitions(console: Console, data: dict[str, Any]) -> None:
    table = Table(
        title=f"Partitioned scan: {data['campaigns']:,} campaigns, "
        f"{data['customers_per_campaign']} due each, {data['partitions']} partition tasks "
        "per tick on a real Celery worker"
    )
    cols = (
        "worker processes",
        "tick ms (median)",
        "min-max ms",
        "claims/s",
        "speed-up",
        "worker CPU s",
        "PostgreSQL CPU s",
        "PostgreSQL share",
        "busy cores",
        "foreign cores",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for r in data["runs"]:
        table.add_row(
            str(r["workers"]),
            _f(r["tick_median_ms"], 1),
            f"{_f(r['tick_min_ms'], 0)}-{_f(r['tick_max_ms'], 0)}",
            _f(r["claims_per_s"], 0),
            f"{_f(r['speedup'], 2)}x",
            _f(r["worker_cpu_s_per_tick"], 2),
            _f(r["postgres_cpu_s_per_tick"], 2),
            f"{_f(100 * r['postgres_cpu_share'], 0)} %" if r["postgres_cpu_share"] else "-",
            _f(r["busy_cores"], 2),
            _f(r["foreign_cores"], 2),
        )
    console.print(table)


def fairness(console: Console, data: dict[str, Any]) -> None:
    if data.get("skipped"):
        console.print(f"fairness: skipped ({data['skipped']})")
        return
    table = Table(
        title=f"Fairness: {data['big']:,} and {data['small']:,} contacts (two accounts), "
        f"provider takes {data['rate_per_s']} calls/s; simulated seconds"
    )
    cols = ("run", "small p50 s", "small p99 s", "big dispatched", "calls/s", "tick wall ms")
    for col in cols:
        table.add_column(col, justify="right")
    for name in ("unbounded", "fair"):
        if name not in data:
            continue
        r = data[name]
        table.add_row(
            name,
            _f(r["small_p50_s"], 2),
            _f(r["small_p99_s"], 2),
            _f(r["big_dispatched"]),
            _f(r["dispatched_per_s"], 1),
            _f(r["tick_wall_median_ms"], 1),
        )
    console.print(table)
