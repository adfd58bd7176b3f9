"""OpenTelemetry tracing: off unless ``DIALER_OTEL_ENABLED``, personal data masked.

Each process turns it on at its entry point, like Sentry (dialer.composition.sentry):
``dialer api`` with the FastAPI instrumentation on its app, the Celery worker and beat
through ``tasks.app`` with the Celery instrumentation (which ``tasks.app`` brings: only
the tasks know Celery). Every process also traces SQLAlchemy, httpx and Redis. The
first call in a process installs the tracer provider; a later one (``dialer api``
imports ``tasks.app`` to publish) only adds its instrumentations.

A trace follows the work across processes in Celery's task headers (W3C traceparent,
put there by the Celery instrumentation when a task is published inside a span): a
webhook request -> ``dialer.apply_event``; a scan -> ``dialer.dispatch`` -> the
provider's HTTP request.

Spans never carry personal data: the SQLAlchemy instrumentation records statements,
never their parameters (and adds no SQL comments); the Redis one records ``CMD ? ?``;
and every span passes :class:`MaskingSpanExporter` on its way out: URL query values are
dropped (some providers' list calls carry numbers there) and every string attribute,
event attribute and status message goes through the log masker
(``dialer.logging.mask_text``: phone numbers, e-mail addresses, SQL parameters).

Standard ``OTEL_*`` variables the SDK reads still apply where no setting says
otherwise: ``OTEL_EXPORTER_OTLP_ENDPOINT``/``_TRACES_ENDPOINT``, ``_HEADERS``,
``OTEL_TRACES_SAMPLER``(``_ARG``), ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, Status, TraceState
from opentelemetry.util.types import Attributes

from dialer.logging import mask_text
from dialer.settings import Settings

# Attributes that hold a URL or its query: their query values are dropped, keys kept.
URL_ATTRIBUTES: Final = frozenset({"http.url", "url.full", "http.target", "url.query"})
HIDDEN: Final = "hidden"
OTLP_TRACES_PATH: Final = "/v1/traces"
PROBE_PATHS: Final = "/healthz,/readyz"  # the instrumentation's list: searched in each URL
FASTAPI_EXCLUDED_URLS_ENV: Final = "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"

_lock = threading.Lock()


@dataclass
class Tracing:
    """This process's tracing: the provider and the instrumentations turned on."""

    provider: TracerProvider
    process: str
    instrumentors: list[BaseInstrumentor] = field(default_factory=list)

    def instrument(self, instrumentors: Sequence[BaseInstrumentor]) -> None:
        for instrumentor in instrumentors:
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(tracer_provider=self.provider, **_options(instrumentor))
                self.instrumentors.append(instrumentor)

    def shutdown(self) -> None:
        """Turn every instrumentation off and flush the spans (tests; process exit)."""
        for instrumentor in reversed(self.instrumentors):
            instrumentor.uninstrument()
        self.instrumentors.clear()
        self.provider.shutdown()


_current: Tracing | None = None


def init_tracing(
    settings: Settings,
    process: str,
    exporter: SpanExporter | None = None,
    instrumentors: Sequence[BaseInstrumentor] = (),
) -> Tracing | None:
    """Start tracing for this process when ``otel_enabled``; None when it stays off.

    ``exporter`` is for tests (the SDK's InMemorySpanExporter): spans go there at once
    instead of in batches to the OTLP endpoint. ``instrumentors`` are added to the
    common ones (SQLAlchemy, httpx, Redis): Celery's from tasks.app.
    """
    global _current
    if not settings.otel_enabled:
        return None
    with _lock:
        if _current is None:
            _current = Tracing(_provider(settings, process, exporter), process)
            trace.set_tracer_provider(_current.provider)  # once per process: later ones warn
            _current.instrument(_common_instrumentors())
        _current.instrument(instrumentors)
        return _current


def current_tracing() -> Tracing | None:
    """The tracing init_tracing started in this process, if any."""
    return _current


def stop_tracing() -> None:
    """Undo init_tracing (tests): instrumentations off, the provider shut down."""
    global _current
    with _lock:
        if _current is not None:
            _current.shutdown()
            _current = None


def instrument_fastapi(app: Any) -> None:
    """The FastAPI instrumentation on ``app``: a server span around every request."""
    tracing = _current
    if tracing is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # Probes answer every few seconds: a trace each would drown the webhooks. The SDK's
    # OTEL_PYTHON_FASTAPI_EXCLUDED_URLS, when set, decides instead.
    probes = None if os.environ.get(FASTAPI_EXCLUDED_URLS_ENV) else PROBE_PATHS
    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider, excluded_urls=probes)


def _common_instrumentors() -> list[BaseInstrumentor]:
    return [SQLAlchemyInstrumentor(), HTTPXClientInstrumentor(), RedisInstrumentor()]


def _options(instrumentor: BaseInstrumentor) -> dict[str, Any]:
    if isinstance(instrumentor, SQLAlchemyInstrumentor):
        # No sqlcommenter: statements stay as written (pg_stat_statements groups them).
        # Its declared range ends before SQLAlchemy 2.1, whose engine events it uses
        # unchanged (tests/unit/test_tracing.py sees the statements' spans).
        return {"enable_commenter": False, "skip_dep_check": True}
    return {}


def _provider(settings: Settings, process: str, exporter: SpanExporter | None) -> TracerProvider:
    provider = TracerProvider(resource=_resource(settings, process), sampler=_sampler(settings))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(MaskingSpanExporter(exporter)))
    else:
        provider.add_span_processor(BatchSpanProcessor(MaskingSpanExporter(_otlp(settings))))
    return provider


def _resource(settings: Settings, process: str) -> Resource:
    attributes: dict[str, str] = {"dialer.process": process}
    name = settings.otel_service_name or os.environ.get("OTEL_SERVICE_NAME")
    attributes["service.name"] = name or f"dialer-{process}"
    return Resource.create(attributes)  # OTEL_RESOURCE_ATTRIBUTES are merged in


def _sampler(settings: Settings) -> Sampler:
    """A ratio of new traces (a task follows its publisher's choice), else OTEL_TRACES_SAMPLER."""
    ratio = settings.otel_traces_sample_ratio
    chosen = _sampler_from_env() if ratio is None else ParentBased(TraceIdRatioBased(ratio))
    return NoLoneClientSpans(chosen)


def _sampler_from_env() -> Sampler:
    from opentelemetry.sdk.trace import sampling

    return sampling._get_from_env_or_default()  # what TracerProvider(sampler=None) takes


class NoLoneClientSpans(Sampler):
    """Drops a client span that would start a trace; otherwise asks ``inner``.

    A trace starts at a request, a task or a publish. A Redis or SQL call outside all of
    them is a poll (beat's lock renewal every second, the broker's bookkeeping between
    tasks): each would be a trace of one span, noise that costs the collector.
    """

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind is SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NoLoneClientSpans{{{self._inner.get_description()}}}"


def _otlp(settings: Settings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = settings.otel_exporter_otlp_endpoint
    # Unset: the exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else localhost:4318.
    endpoint = None if base is None else base.rstrip("/") + OTLP_TRACES_PATH
    return OTLPSpanExporter(endpoint=endpoint)


# --------------------------------------------------------------------------- masking


def mask_url(url: str) -> str:
    """'https://api.example/call?to=+39...&limit=5' -> '...?to=hidden&limit=hidden', masked."""
    parts = urlsplit(url)
    if parts.query:
        parts = parts._replace(query=_mask_query(parts.query))
    return mask_text(urlunsplit(parts))


def _mask_query(query: str) -> str:
    return urlencode([(key, HIDDEN) for key, _ in parse_qsl(query, keep_blank_values=True)])


def _mask_attribute(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key == "url.query":
            return _mask_query(value)
        return mask_url(value) if key in URL_ATTRIBUTES else mask_text(value)
    if isinstance(value, tuple | list):
        return tuple(mask_text(v) if isinstance(v, str) else v for v in value)
    return value


def mask_attributes(attributes: Attributes) -> dict[str, Any]:
    return {key: _mask_attribute(key, value) for key, value in (attributes or {}).items()}


def masked_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` whose name, attributes, events and status are masked."""
    events = [
        Event(event.name, mask_attributes(event.attributes), event.timestamp)
        for event in span.events
    ]
    status = span.status
    if status.description:
        status = Status(status.status_code, mask_text(status.description))
    return ReadableSpan(
        name=mask_text(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=mask_attributes(span.attributes),
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class MaskingSpanExporter(SpanExporter):
    """Masks every span (:func:`masked_span`) before the wrapped exporter sees it."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([masked_span(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
