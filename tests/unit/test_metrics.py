"""The dialer's Prometheus instruments: what each recording function counts, the
campaign gauges, and multiprocess collection across forked processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dialer import metrics
from dialer.services.dispatch import DispatchReport, Verdict
from scheduler.ticks import _record_dispatch_metrics


def scraped(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_scan_records_its_duration_and_the_claims() -> None:
    le = {"le": "0.25"}
    count = metrics.sample("dialer_scan_duration_seconds_count")
    fast = metrics.sample("dialer_scan_duration_seconds_bucket", le)
    claimed = metrics.sample("dialer_attempts_claimed_total")
    metrics.scan_finished(0.2, claimed=7)
    metrics.scan_finished(0.01, claimed=0)
    metrics.scan_finished(0.3, claimed=1)
    assert metrics.sample("dialer_scan_duration_seconds_count") == count + 3
    assert metrics.sample("dialer_attempts_claimed_total") == claimed + 8
    # Earlier tests' scans in this process may be slower: compare this test's share.
    assert metrics.sample("dialer_scan_duration_seconds_bucket", le) == fast + 2


def test_dispatch_reports_become_tries_placements_per_campaign_and_errors_by_reason() -> None:
    campaign = str(uuid.uuid4())
    reports = [
        DispatchReport(uuid.uuid4(), Verdict.PLACED, "call_1", campaign_id=campaign),
        DispatchReport(uuid.uuid4(), Verdict.PLACED, "call_2", campaign_id=campaign),
        DispatchReport(uuid.uuid4(), Verdict.RETRY, "503", error="server_error"),
        DispatchReport(uuid.uuid4(), Verdict.FAILED, "bad", error="invalid_number"),
        DispatchReport(uuid.uuid4(), Verdict.DEFERRED, "window closed"),  # never asked
        DispatchReport(uuid.uuid4(), Verdict.NOT_QUEUED),  # a duplicate delivery
    ]
    tries = metrics.sample("dialer_dispatch_attempts_total")
    server = metrics.sample("dialer_dispatch_errors_total", {"reason": "server_error"})
    _record_dispatch_metrics(reports)
    assert metrics.sample("dialer_dispatch_attempts_total") == tries + 4
    assert metrics.sample("dialer_calls_placed_total", {"campaign_id": campaign}) == 2
    assert metrics.sample("dialer_dispatch_errors_total", {"reason": "server_error"}) == server + 1
    assert metrics.sample("dialer_dispatch_errors_total", {"reason": "invalid_number"}) >= 1


def test_outcomes_and_webhook_results_are_counted_by_label() -> None:
    answered = metrics.sample("dialer_attempts_finished_total", {"outcome": "answered"})
    forged = metrics.sample("dialer_webhook_events_total", {"result": "forged"})
    metrics.attempt_finished("answered")
    metrics.webhook_events("forged", 3)
    metrics.webhook_events("forged", 0)
    assert metrics.sample("dialer_attempts_finished_total", {"outcome": "answered"}) == answered + 1
    assert metrics.sample("dialer_webhook_events_total", {"result": "forged"}) == forged + 3


def test_provider_latency_is_observed_even_when_the_request_fails() -> None:
    labels = {"provider": "unit", "operation": "place_call"}
    before = metrics.sample("dialer_provider_request_seconds_count", labels)
    with pytest.raises(TimeoutError), metrics.provider_request("unit", "place_call"):
        raise TimeoutError
    with metrics.provider_request("unit", "place_call"):
        pass
    assert metrics.sample("dialer_provider_request_seconds_count", labels) == before + 2


def test_campaign_gauges_are_read_at_scrape_time() -> None:
    loads = [metrics.CampaignLoad("c1", backlog=5, in_flight=3, concurrency=10)]
    registry = metrics.exposition_registry(metrics.CampaignGauges(lambda: loads))
    first = scraped(generate_latest(registry).decode())
    assert first[("dialer_campaign_backlog", (("campaign_id", "c1"),))] == 5
    assert first[("dialer_campaign_calls_in_flight", (("campaign_id", "c1"),))] == 3
    assert first[("dialer_campaign_concurrency", (("campaign_id", "c1"),))] == 10
    loads[0] = metrics.CampaignLoad("c1", backlog=0, in_flight=11, concurrency=10)
    second = scraped(generate_latest(registry).decode())
    assert second[("dialer_campaign_backlog", (("campaign_id", "c1"),))] == 0
    assert second[("dialer_campaign_calls_in_flight", (("campaign_id", "c1"),))] == 11


def test_a_scrape_includes_this_process_samples() -> None:
    metrics.attempt_finished("voicemail")
    text = generate_latest(metrics.exposition_registry()).decode()
    samples = scraped(text)
    assert samples[("dialer_attempts_finished_total", (("outcome", "voicemail"),))] >= 1


FORKED_WORKER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    import prometheus_client  # imported first, as Celery and Flower do
    from prometheus_client import generate_latest
    from dialer import metrics

    metrics.enable_multiprocess(Path(sys.argv[1]))
    children = []
    for n in range(3):  # a prefork pool: each child records on its own
        pid = os.fork()
        if pid == 0:
            metrics.attempt_finished("answered")
            metrics.dispatch_finished(n + 1, {"camp": n + 1}, {})
            metrics.scan_finished(0.05, claimed=n + 1)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)  # exited: their counts must still be served
    sys.stdout.write(generate_latest(metrics.exposition_registry()).decode())
    """
)


def test_forked_processes_are_summed_by_the_parent(tmp_path: Path) -> None:
    directory = tmp_path / "worker-1"
    directory.mkdir()
    (directory / "counter_999.db").write_bytes(b"stale")  # an earlier run's file is dropped
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKER, str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    samples = scraped(done.stdout)
    assert samples[("dialer_attempts_finished_total", (("outcome", "answered"),))] == 3
    assert samples[("dialer_calls_placed_total", (("campaign_id", "camp"),))] == 6
    assert samples[("dialer_dispatch_attempts_total", ())] == 6
    assert samples[("dialer_attempts_claimed_total", ())] == 6
    assert samples[("dialer_scan_duration_seconds_count", ())] == 3


def test_a_killed_workers_directory_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    from tasks.observability import remove_dead_workers_dirs

    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead, alive = tmp_path / f"worker-{finished.stdout.strip()}", tmp_path / f"worker-{os.getpid()}"
    for directory in (dead, alive):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")
    remove_dead_workers_dirs(tmp_path)
    assert not dead.exists()
    assert alive.exists()
