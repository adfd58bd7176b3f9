"""Tracing: off by default; on, spans are recorded and leave the process masked.

Spans go to the SDK's InMemorySpanExporter: nothing is sent anywhere. Requests go to
a closed loopback port (refused at once), so the httpx span ends with an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util._once import Once

from dialer.composition.tracing import (
    current_tracing,
    init_tracing,
    instrument_fastapi,
    mask_url,
    masked_span,
    stop_tracing,
)
from dialer.settings import Settings

PHONE = "+14155550123"
EMAIL = "maria.rossi@example.com"
CLOSED_PORT_URL = "http://127.0.0.1:9"


def reset_trace_globals() -> None:
    """The SDK lets a process set its tracer provider once; each test starts with none."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    reset_trace_globals()
    yield
    stop_tracing()
    reset_trace_globals()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracing = init_tracing(Settings(otel_enabled=True), "api", exporter, [CeleryInstrumentor()])
    assert tracing is not None
    return exporter


def _get_quietly(url: str) -> None:
    """A request inside a task's span (a lone client span starts no trace)."""
    tracer = trace.get_tracer("test")
    with (
        tracer.start_as_current_span("run/task", kind=SpanKind.CONSUMER),
        pytest.raises(httpx.ConnectError),
    ):
        httpx.get(url, timeout=1)


async def _requests(app: FastAPI, *requests: tuple[str, str]) -> bool:
    """Each request through the app in process (ASGI): True when all answered 200."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dialer.test") as client:
        answers = [await client.request(method, path) for method, path in requests]
    return all(answer.status_code == 200 for answer in answers)


def test_tracing_is_off_by_default_no_provider_no_instrumentation() -> None:
    settings = Settings()
    assert settings.otel_enabled is False

    assert init_tracing(settings, "api", InMemorySpanExporter()) is None

    assert current_tracing() is None
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)  # the API's proxy
    for instrumentor in (
        CeleryInstrumentor(),
        HTTPXClientInstrumentor(),
        RedisInstrumentor(),
        SQLAlchemyInstrumentor(),
    ):
        assert not instrumentor.is_instrumented_by_opentelemetry
    app = FastAPI()
    instrument_fastapi(app)
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
    span = trace.get_tracer("test").start_span("anything")
    assert not span.is_recording()  # nothing could be exported


def test_on_every_library_is_instrumented_and_the_provider_installed(
    spans: InMemorySpanExporter,
) -> None:
    tracing = current_tracing()
    assert tracing is not None
    assert trace.get_tracer_provider() is tracing.provider
    for instrumentor in (
        CeleryInstrumentor(),
        HTTPXClientInstrumentor(),
        RedisInstrumentor(),
        SQLAlchemyInstrumentor(),
    ):
        assert instrumentor.is_instrumented_by_opentelemetry
    app = FastAPI()
    instrument_fastapi(app)
    assert getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_a_request_is_a_server_span_but_a_probe_is_not(spans: InMemorySpanExporter) -> None:
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/calls/{provider}")
    def webhook(provider: str) -> dict[str, str]:
        return {"provider": provider}

    instrument_fastapi(app)
    assert asyncio.run(
        _requests(app, ("GET", "/healthz"), ("POST", f"/webhooks/calls/x?to={PHONE}"))
    )

    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /webhooks/calls/{provider}"]
    assert PHONE not in repr(dict(servers[0].attributes or {}))


def test_a_second_start_keeps_the_first_provider_and_adds_instrumentations() -> None:
    first = init_tracing(Settings(otel_enabled=True), "api", InMemorySpanExporter())
    assert first is not None
    assert not CeleryInstrumentor().is_instrumented_by_opentelemetry

    second = init_tracing(Settings(otel_enabled=True), "celery", None, [CeleryInstrumentor()])

    assert second is first
    assert first.provider.resource.attributes["service.name"] == "dialer-api"
    assert CeleryInstrumentor().is_instrumented_by_opentelemetry


def test_service_name_from_the_setting_else_otel_service_name_else_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    named = init_tracing(Settings(otel_enabled=True, otel_service_name="dialer-eu"), "api")
    assert named is not None
    assert named.provider.resource.attributes["service.name"] == "dialer-eu"
    assert named.provider.resource.attributes["dialer.process"] == "api"
    stop_tracing()

    from_env = init_tracing(Settings(otel_enabled=True), "celery")
    assert from_env is not None
    assert from_env.provider.resource.attributes["service.name"] == "from-env"


def test_the_sample_ratio_keeps_that_share_of_new_traces() -> None:
    tracing = init_tracing(Settings(otel_enabled=True, otel_traces_sample_ratio=0.0), "api")
    assert tracing is not None
    span = tracing.provider.get_tracer("test").start_span("root")
    assert not span.is_recording()


def test_a_client_span_starts_no_trace_but_is_kept_inside_one(
    spans: InMemorySpanExporter,
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("redis poll", kind=SpanKind.CLIENT) as lone:
        assert not lone.is_recording()
    with (
        tracer.start_as_current_span("POST /webhooks", kind=SpanKind.SERVER),
        tracer.start_as_current_span("INSERT", kind=SpanKind.CLIENT) as inside,
    ):
        assert inside.is_recording()
    assert [span.name for span in spans.get_finished_spans()] == ["INSERT", "POST /webhooks"]


def test_an_http_request_span_carries_no_query_values_nor_phone_numbers(
    spans: InMemorySpanExporter,
) -> None:
    _get_quietly(f"{CLOSED_PORT_URL}/lookup/{PHONE}?to={PHONE.replace('+', '%2B')}&limit=5")

    span, _task = spans.get_finished_spans()
    url = str((span.attributes or {}).get("http.url") or (span.attributes or {})["url.full"])
    assert url.startswith(f"{CLOSED_PORT_URL}/lookup/")
    assert url.endswith("?to=hidden&limit=hidden")
    assert "4155550" not in url
    assert span.status.status_code is StatusCode.ERROR


def test_every_string_of_a_span_goes_through_the_log_masker() -> None:
    span = ReadableSpan(
        name=f"call {PHONE}",
        attributes={"note": f"to {PHONE} and {EMAIL}", "tags": (EMAIL, "plain"), "n": 3},
        status=Status(StatusCode.ERROR, f"refused {PHONE}"),
    )

    masked = masked_span(span)

    text = repr((masked.name, dict(masked.attributes or {}), masked.status.description))
    assert PHONE not in text
    assert EMAIL not in text
    assert "+1********23" in text
    assert (masked.attributes or {})["n"] == 3
    assert (masked.attributes or {})["tags"] == ("m***@example.com", "plain")


def test_a_url_keeps_its_path_and_query_keys() -> None:
    assert mask_url("https://api.example/v1/call?id=7&x=") == (
        "https://api.example/v1/call?id=hidden&x=hidden"
    )
    assert mask_url("https://api.example/v1/call") == "https://api.example/v1/call"
