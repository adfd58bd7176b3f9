"""Traces across the real processes: a webhook into its apply task, a scan into the
provider's HTTP request, exported over OTLP/HTTP to a fake collector in this test.

Real processes: `dialer sandbox` (the HTTP provider, sending signed webhooks), `dialer
api`, a Celery worker and beat, with DIALER_OTEL_ENABLED. The trace context travels
only in Celery's task headers between processes: if the ingress published outside its
request span, or the scan outside its task span, the traces here would be split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx

from dialer.processes import process_group
from tests.e2e.celery_support import fast_run, wait_for
from tests.e2e.otlp_collector import Collector, ReceivedSpan, otlp_collector
from tests.integration.loopback_support import free_port
from tests.integration.pipeline_support import (
    CUSTOMERS_CSV,
    MONDAY_6_UTC,
    setup_campaign,
    start,
)

RUN_TIMEOUT_SECONDS = 150
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP Span.SpanKind
CUSTOMER_PHONES = re.findall(r"\+(\d{8,})", CUSTOMERS_CSV)


def _up(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def _ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


def webhook_to_apply(spans: list[ReceivedSpan]) -> list[ReceivedSpan] | None:
    """An apply task's run span and its ancestors, up to the api's webhook request span."""
    by_id = {span.span_id: span for span in spans}
    for span in spans:
        if span.name == "run/dialer.apply_event" and span.kind == CONSUMER:
            chain = [span, *_ancestors(span, by_id)]
            if any(s.kind == SERVER and "/webhooks/calls/" in s.name for s in chain):
                return chain
    return None


def scan_to_provider(spans: list[ReceivedSpan]) -> list[ReceivedSpan] | None:
    """A provider request span and its ancestors, up to the scan task that claimed it."""
    by_id = {span.span_id: span for span in spans}
    for span in spans:
        if span.kind == CLIENT and span.service == "dialer-celery" and _is_http(span):
            chain = [span, *_ancestors(span, by_id)]
            names = {s.name for s in chain}
            if "run/dialer.dispatch" in names and "run/dialer.scan" in names:
                return chain
    return None


def _is_http(span: ReceivedSpan) -> bool:
    return "http.method" in span.attributes or "http.request.method" in span.attributes


def _found(collector: Collector, find: Callable[[list[ReceivedSpan]], object]) -> bool:
    return find(collector.snapshot()) is not None


def test_a_webhook_and_its_apply_task_and_a_scan_and_its_provider_request_share_traces(
    clean_db: str, redis_url: str, tmp_path: Path
) -> None:
    sandbox_port, api_port = free_port(), free_port()
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    with otlp_collector() as collector:
        run = fast_run(
            clean_db,
            redis_url,
            tmp_path,
            MONDAY_6_UTC,
            DIALER_PROVIDER="http",
            DIALER_PROVIDER_BASE_URL=sandbox,
            DIALER_WHATSAPP_BASE_URL=sandbox,
            DIALER_SANDBOX_PORT=str(sandbox_port),
            DIALER_API_PORT=str(api_port),
            DIALER_API_METRICS_PORT="0",
            DIALER_WORKER_METRICS_PORT="0",
            DIALER_PUBLIC_WEBHOOK_BASE_URL=f"http://127.0.0.1:{api_port}",
            DIALER_PROVIDER_CALLS_PER_SECOND="50",
            DIALER_WEBHOOK_SECRET="whsec_test_" + "w" * 24,
            DIALER_PROVIDER_API_KEY="sk_test_" + "k" * 24,
            DIALER_WHATSAPP_TOKEN="wa_test_" + "t" * 24,
            DIALER_WHATSAPP_APP_SECRET="meta_app_" + "s" * 24,
            DIALER_WHATSAPP_VERIFY_TOKEN="meta_verify_" + "v" * 24,
            DIALER_OTEL_ENABLED="true",
            DIALER_OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_BSP_SCHEDULE_DELAY="200",  # the SDK's batch: export every 0.2 s
        )
        campaign_id = setup_campaign(clean_db)
        with process_group(run.env, run.log_dir) as group:
            group.dialer("sandbox", ["sandbox"])
            group.dialer("api", ["api"])
            wait_for(lambda: _up(f"{sandbox}/sandbox/health"), 30, "the sandbox", run.log_dir)
            wait_for(lambda: _up(f"http://127.0.0.1:{api_port}/healthz"), 30, "api", run.log_dir)
            group.worker(concurrency=2)
            group.beat()
            start(clean_db, campaign_id, run.now())
            wait_for(
                lambda: _found(collector, webhook_to_apply) and _found(collector, scan_to_provider),
                RUN_TIMEOUT_SECONDS,
                "a webhook -> apply trace and a scan -> provider request trace",
                run.log_dir,
            )
        spans = collector.snapshot()

    webhook_chain = webhook_to_apply(spans)
    assert webhook_chain is not None
    assert len({s.trace_id for s in webhook_chain}) == 1
    run_span, publish = webhook_chain[0], webhook_chain[1]
    assert (run_span.service, publish.service) == ("dialer-celery", "dialer-api")
    assert (publish.name, publish.kind) == ("apply_async/dialer.apply_event", PRODUCER)

    provider_chain = scan_to_provider(spans)
    assert provider_chain is not None
    assert len({s.trace_id for s in provider_chain}) == 1
    kinds = [(s.name, s.kind) for s in provider_chain]
    assert ("apply_async/dialer.dispatch", PRODUCER) in kinds

    # Personal data never leaves in a span: no customer's number in any attribute.
    texts = [str(value) for span in spans for value in span.attributes.values()]
    texts += [span.name for span in spans]
    leaked = [text for text in texts for phone in CUSTOMER_PHONES if phone in text]
    assert leaked == []
    assert any(s.attributes.get("db.system") == "postgresql" for s in spans)  # SQL traced
