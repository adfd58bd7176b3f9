"""Rich renderings for people: import reports and contact plans."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from dialer.customers_csv import write_rejected_rows
from dialer.logging import mask_phone
from dialer.policies.forecast import ForecastResult
from dialer.policies.plan import REMEDIES, SKIPPED, PlanBucket
from dialer.services.imports import ImportReport
from dialer.services.plan import ContactPlan

MAX_PROBLEMS_SHOWN = 20


def print_import_report(
    console: Console, report: ImportReport, rejects: Path, *, committed: bool
) -> None:
    verb = "imported" if committed else "would have imported"
    console.print(
        f"{report.rows_read} rows read; {verb}: {report.enrolled} enrolled "
        f"({report.customers_created} new customers, {report.customers_updated} updated), "
        f"{report.already_enrolled} already enrolled, {report.missing_contact} missing contact, "
        f"{report.invalid_phone} invalid numbers (enrolled as failed), {report.opted_out} opted out"
    )
    problems = report.rejected
    if not problems:
        return
    total = report.rejected_count
    table = Table("line", "field", "reason", title=f"{total} row(s) not imported")
    for p in problems[:MAX_PROBLEMS_SHOWN]:
        table.add_row(str(p.line), p.field, p.reason)
    console.print(table)
    if total > MAX_PROBLEMS_SHOWN:
        console.print(f"... and {total - MAX_PROBLEMS_SHOWN} more")
    write_rejects(rejects, report)
    console.print(f"rejected rows written to {rejects}")


def write_rejects(path: Path, report: ImportReport) -> None:
    """Keep every rejected row, with its line and reason, where it can be inspected and fixed
    (dialer.customers_csv.write_rejected_rows; the dashboard's download writes the same)."""
    with path.open("w", newline="") as out:
        write_rejected_rows(out, report.problems)


def print_plan(console: Console, plan: ContactPlan) -> None:
    table = Table(title=f"Contact plan of {plan.campaign_name!r} at {plan.at:%Y-%m-%d %H:%M} UTC")
    for col in ("customer", "phone", "local zone", "source", "standing", "next opening (local)"):
        table.add_column(col)
    for row in plan.rows:
        table.add_row(
            row.customer_ref,
            mask_phone(row.phone or "-"),
            ", ".join(row.zones),
            row.zone_source,
            _styled(row.bucket),
            _local_opening(row.next_opening, row.zones[0] if row.zones else "UTC"),
        )
    console.print(table)
    total = sum(plan.counts.values())
    if total > len(plan.rows):
        console.print(f"({len(plan.rows)} of {total} contacts listed)")
    console.print(_counts_table(plan))


def _counts_table(plan: ContactPlan) -> Table:
    table = Table("standing", "contacts", title="Counts")
    for bucket in PlanBucket:
        label = f"skipped: {bucket.value}" if bucket in SKIPPED else bucket.value
        table.add_row(label, str(plan.counts.get(bucket, 0)))
    table.add_row("[bold]total[/]", f"[bold]{sum(plan.counts.values())}[/]")
    for bucket, remedy in REMEDIES.items():
        if plan.counts.get(bucket):
            table.caption = (table.caption or "") + f"{bucket.value}: {remedy}\n"
    return table


def _styled(bucket: PlanBucket) -> str:
    if bucket is PlanBucket.NOW:
        return "[green]callable now[/]"
    if bucket in SKIPPED:
        return f"[red]skipped: {bucket.value}[/]"
    return bucket.value.replace("_", " ")


def _local_opening(opening: datetime | None, zone: str) -> str:
    if opening is None:
        return "-"
    return opening.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M %Z")


def print_forecast(console: Console, campaign_name: str, result: ForecastResult) -> None:
    """The forecast's figures; nobody was called and nothing was written."""
    figures = result.to_dict()
    table = Table(
        "figure", "value", title=f"Forecast of {campaign_name!r} from {_utc(result.start)}"
    )
    done = result.completed_at
    table.add_row(
        "expected completion",
        _utc(done)
        if done
        else f"not by {_utc(result.horizon_end)} ({result.open_at_horizon} open)",
    )
    table.add_row("contacts", str(result.contacts))
    table.add_row("calls", str(result.calls))
    table.add_row(
        "calls per contact called",
        f"mean {figures['calls_per_contact_mean']}, max {result.calls_per_contact_max}",
    )
    table.add_row(
        "callable today",
        f"{result.callable_today_share:.1%} ({result.called_today} of {result.contacts})",
    )
    dollars = result.cost_millicents / 100_000  # 1000 milli-cents a cent
    table.add_row("expected cost", f"{result.cost_millicents} milli-cents (${dollars:,.2f})")
    table.add_row("fallback messages", str(result.messages))
    console.print(table)
    console.print(_forecast_counts(result))
    console.print(f"simulated with seed {result.seed}; nobody was called, nothing was written")


def _forecast_counts(result: ForecastResult) -> Table:
    table = Table("kind", "reason", "count", title="Skips and outcomes")
    for reason, count in sorted(result.excluded.items()):
        table.add_row("skipped (never called)", reason, str(count))
    for deferral, count in sorted(result.deferrals.items()):
        table.add_row("deferred (moved later)", str(deferral), str(count))
    for outcome, count in sorted(result.outcomes.items()):
        table.add_row("call outcome", str(outcome), str(count))
    for state, count in sorted(result.closed_as.items()):
        table.add_row("closed as", state, str(count))
    return table


def _utc(at: datetime) -> str:
    return f"{at.astimezone(ZoneInfo('UTC')):%Y-%m-%d %H:%M} UTC"
