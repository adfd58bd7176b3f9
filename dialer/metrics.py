"""The dialer's own Prometheus metrics (docs/OPERATIONS.md, "Metrics").

Counters and histograms are recorded where the fact happens (the scan, dispatch, the
result batch, the webhook ingress, the HTTP provider adapter) through the named
functions below; this is the only module that knows prometheus-client.

Two ways to serve them:

- A Celery worker forks its pool processes, so each one writes its samples to files
  in a per-worker directory (prometheus-client multiprocess mode) and the worker's
  main process serves the sum of them (`tasks.observability`). A pool process that
  dies keeps its counts: counters stay monotonic across restarts of the pool.
- The API process serves its own samples plus the campaign gauges (backlog, calls in
  flight, concurrency), read from PostgreSQL at scrape time so they are right whatever
  worker died (`dialer.api.serve_metrics`).
"""

from __future__ import annotations

import base64
import errno
import hmac
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from time import perf_counter
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    make_wsgi_app,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler
from prometheus_client.registry import Collector

from dialer.logging import get_logger
from dialer.settings import Settings

log = get_logger("dialer.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
SCAN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class _Instruments:
    registry: CollectorRegistry
    attempts_claimed: Counter
    dispatch_attempts: Counter
    calls_placed: Counter
    dispatch_errors: Counter
    attempts_finished: Counter
    scan_duration: Histogram
    webhook_events: Counter
    provider_latency: Histogram
    webhook_deliveries: Counter


@lru_cache(maxsize=1)
def _instruments() -> _Instruments:
    # Built on first use, in the process that records: after a worker has forked and
    # after enable_multiprocess() chose where values live.
    registry = CollectorRegistry(auto_describe=True)

    def counter(name: str, doc: str, labels: Iterable[str] = ()) -> Counter:
        return Counter(name, doc, list(labels), registry=registry)

    return _Instruments(
        registry=registry,
        attempts_claimed=counter(
            "dialer_attempts_claimed", "Due attempts the scan claimed (pending -> queued)."
        ),
        dispatch_attempts=counter(
            "dialer_dispatch_attempts", "Tries to hand a call to the voice provider."
        ),
        calls_placed=counter(
            "dialer_calls_placed", "Calls the voice provider accepted.", ["campaign_id"]
        ),
        dispatch_errors=counter(
            "dialer_dispatch_errors",
            "Tries the provider failed, by reason (timeout, network, server_error, "
            "rate_limited, call_budget, or the refusal's code).",
            ["reason"],
        ),
        attempts_finished=counter(
            "dialer_attempts_finished", "Call attempts that reached a final status.", ["outcome"]
        ),
        scan_duration=Histogram(
            "dialer_scan_duration_seconds",
            "Duration of one due-scan tick.",
            buckets=SCAN_BUCKETS,
            registry=registry,
        ),
        webhook_events=counter(
            "dialer_webhook_events",
            "Provider events by result: stored, duplicate, rejected (malformed, kept for "
            "inspection), forged (bad signature or old timestamp), too_large at intake; "
            "applied, unchanged, ignored, not_pending when a stored event is applied.",
            ["result"],
        ),
        provider_latency=Histogram(
            "dialer_provider_request_seconds",
            "Round trip of one HTTP request to a provider, answered or not.",
            ["provider", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        webhook_deliveries=counter(
            "dialer_webhook_deliveries",
            "Tries to POST an event to an account's webhook endpoint, by result: "
            "delivered, failed (retried later), dead (the last try failed).",
            ["result"],
        ),
    )


# --------------------------------------------------------------------------- recording


def scan_finished(seconds: float, claimed: int) -> None:
    instruments = _instruments()
    instruments.scan_duration.observe(seconds)
    if claimed:
        instruments.attempts_claimed.inc(claimed)


def dispatch_finished(
    tries: int, placed_by_campaign: Mapping[str, int], errors_by_reason: Mapping[str, int]
) -> None:
    instruments = _instruments()
    if tries:
        instruments.dispatch_attempts.inc(tries)
    for campaign_id, placed in placed_by_campaign.items():
        instruments.calls_placed.labels(campaign_id=campaign_id).inc(placed)
    for reason, count in errors_by_reason.items():
        instruments.dispatch_errors.labels(reason=reason).inc(count)


def attempt_finished(outcome: str) -> None:
    _instruments().attempts_finished.labels(outcome=outcome).inc()


def webhook_events(result: str, count: int = 1) -> None:
    if count:
        _instruments().webhook_events.labels(result=result).inc(count)


def webhook_delivery(result: str) -> None:
    _instruments().webhook_deliveries.labels(result=result).inc()


@contextmanager
def provider_request(provider: str, operation: str) -> Iterator[None]:
    """Time one provider request, whether it answers, fails or times out."""
    started = perf_counter()
    try:
        yield
    finally:
        histogram = _instruments().provider_latency
        histogram.labels(provider=provider, operation=operation).observe(perf_counter() - started)


# --------------------------------------------------------------------------- campaign gauges


@dataclass(frozen=True)
class CampaignLoad:
    """One running campaign, as the gauges show it."""

    campaign_id: str
    backlog: int  # pending attempts that are due now
    in_flight: int  # queued, dispatching or in_progress
    concurrency: int


class CampaignGauges(Collector):
    """Reads the load of every running campaign when Prometheus scrapes."""

    def __init__(self, read: Callable[[], list[CampaignLoad]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loads = self._read()
        families = {
            "backlog": GaugeMetricFamily(
                "dialer_campaign_backlog",
                "Pending attempts of a running campaign that are due now.",
                labels=["campaign_id"],
            ),
            "in_flight": GaugeMetricFamily(
                "dialer_campaign_calls_in_flight",
                "Attempts queued, dispatching or in progress.",
                labels=["campaign_id"],
            ),
            "concurrency": GaugeMetricFamily(
                "dialer_campaign_concurrency",
                "The campaign's concurrency setting.",
                labels=["campaign_id"],
            ),
        }
        for load in loads:
            for attribute, family in families.items():
                family.add_metric([load.campaign_id], getattr(load, attribute))
        yield from families.values()


@dataclass(frozen=True)
class InboxLoad:
    """Provider events stored and not yet applied: how many, and the oldest one's age."""

    pending: int
    lag_seconds: float  # 0 when nothing waits


class InboxGauges(Collector):
    """Reads the inbox's backlog when Prometheus scrapes: results that wait to be applied."""

    def __init__(self, read: Callable[[], InboxLoad]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        load = self._read()
        yield GaugeMetricFamily(
            "dialer_inbox_pending",
            "Provider events stored and not yet applied.",
            value=load.pending,
        )
        yield GaugeMetricFamily(
            "dialer_inbox_lag_seconds",
            "Age of the oldest provider event not yet applied (0 when none waits).",
            value=load.lag_seconds,
        )


@dataclass(frozen=True)
class QueueLoad:
    """The broker's Celery queues, read at scrape time (dialer.composition.queues)."""

    waiting: dict[str, int]  # messages waiting, by queue
    unacked: int  # delivered to a worker and not yet acknowledged


class QueueGauges(Collector):
    """Celery's queue lengths when Prometheus scrapes: the backlog workers have not taken."""

    def __init__(self, read: Callable[[], QueueLoad]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        load = self._read()
        waiting = GaugeMetricFamily(
            "dialer_celery_queue_length",
            "Celery messages waiting in the broker, by queue.",
            labels=["queue"],
        )
        for queue, length in sorted(load.waiting.items()):
            waiting.add_metric([queue], length)
        yield waiting
        yield GaugeMetricFamily(
            "dialer_celery_unacked_messages",
            "Celery messages delivered to a worker and not yet acknowledged (running, or "
            "held by a worker that died until the visibility timeout).",
            value=load.unacked,
        )


class WebhookGauges(Collector):
    """Reads, at scrape, how many accounts' webhook endpoints are disabled (issue 17)."""

    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "dialer_webhook_endpoints_disabled",
            "Webhook endpoints disabled after consecutive failed deliveries, or by their "
            "account; nothing is sent to them until they are enabled again.",
            value=self._read(),
        )


# --------------------------------------------------------------------------- serving


def enable_multiprocess(directory: Path) -> None:
    """Make every process forked from here write its samples under ``directory``.

    Call it in a worker's main process before the pool forks. The directory is the
    worker's own: stale files of an earlier run are removed first, since counts of a
    process that no longer exists would be added to the new run's.
    """
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    # prometheus-client chose its value class when it was imported (often by Flower or
    # Celery, before us); metrics created from now on must use the files.
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _instruments.cache_clear()


def exposition_registry(*collectors: Collector) -> CollectorRegistry:
    """What a scrape reads: this process's samples (or all processes'), plus ``collectors``."""
    registry = CollectorRegistry()
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return registry


class _ThisProcess(Collector):
    """This process's instruments, whichever registry holds them at scrape time."""

    def collect(self) -> Iterator[Metric]:
        yield from _instruments().registry.collect()


@dataclass(frozen=True)
class MetricsAuth:
    """Who may scrape: a bearer token, a basic-auth user and password, or both.

    Built from DIALER_METRICS_TOKEN / DIALER_METRICS_USER / DIALER_METRICS_PASSWORD;
    with none set the endpoint is open (bind it to loopback or a private network).
    """

    token: str | None = None
    basic: tuple[str, str] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsAuth | None:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        password = settings.metrics_password.get_secret_value() if settings.metrics_password else ""
        basic = (settings.metrics_user, password) if settings.metrics_user else None
        return cls(token, basic) if token or basic else None

    def allows(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.partition(" ")
        if self.token and scheme.lower() == "bearer":
            return hmac.compare_digest(credentials.strip().encode(), self.token.encode())
        if self.basic and scheme.lower() == "basic":
            try:
                given = base64.b64decode(credentials.strip(), validate=True)
            except ValueError:
                return False
            return hmac.compare_digest(given, ":".join(self.basic).encode())
        return False

    def protect(self, app: Any) -> Any:
        """A WSGI app that answers 401 unless the request carries an allowed credential."""

        def guarded(environ: dict[str, Any], start_response: Any) -> Any:
            if self.allows(environ.get("HTTP_AUTHORIZATION", "")):
                return app(environ, start_response)
            challenge = "Basic" if self.basic else "Bearer"
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "text/plain"),
                    ("WWW-Authenticate", f'{challenge} realm="metrics"'),
                ],
            )
            return [b"metrics need credentials\n"]

        return guarded


def serve(
    host: str, port: int, registry: CollectorRegistry, auth: MetricsAuth | None = None
) -> WSGIServer | None:
    """Serve ``registry`` on host:port in a daemon thread; None when the port is taken.

    A worker or API that cannot bind its metrics port still does its real work: the
    failure is logged, not raised (two workers on one host need two ports). With
    ``auth`` every scrape must carry its credential.
    """
    app = make_wsgi_app(registry)
    if auth is not None:
        app = auth.protect(app)
    try:
        server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        log.warning("metrics_port_in_use", host=host, port=port)
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log.info("metrics_listening", host=host, port=server.server_port, auth=auth is not None)
    return server


def stop(server: WSGIServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def sample(name: str, labels: Mapping[str, str] | None = None) -> float:
    """The current value of one sample in this process (0.0 when never recorded)."""
    value = _instruments().registry.get_sample_value(name, dict(labels or {}))
    return value or 0.0


__all__ = [
    "CampaignGauges",
    "CampaignLoad",
    "InboxGauges",
    "InboxLoad",
    "WebhookGauges",
    "attempt_finished",
    "dispatch_finished",
    "enable_multiprocess",
    "exposition_registry",
    "provider_request",
    "sample",
    "scan_finished",
    "serve",
    "stop",
    "webhook_delivery",
    "webhook_events",
]
