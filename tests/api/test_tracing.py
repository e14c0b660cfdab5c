"""One cancel call through the HTTP API is ONE trace: the API's span, the Temporal update, the
activities it causes and their Stripe (HTTP) and database (SQL) spans, all under one trace id
and connected parent to child (README "Tracing").

The real app, the real worker on the time-skipping server and localstripe, traced into an
in-memory exporter; the API and the worker share one client, as the interceptor would be on
each process's own client in a deployment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config.settings import Settings, TracingSettings
from store.engine import get_engine
from tests.api.helpers import Org, create_customer, create_subscription, settle
from workflows.telemetry import Tracing, start

CANCEL_ROUTE = "/v1/subscriptions/{subscription_id}/cancel"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(settings: Settings, exporter: InMemorySpanExporter) -> Iterator[Tracing]:
    traced = start(settings.tracing, "subscription-engine-test",
                   get_engine(settings.database_url), exporter=exporter)
    assert traced is not None
    try:
        yield traced
    finally:
        traced.shutdown()


@pytest.fixture
async def traced_api(env: WorkflowEnvironment, settings: Settings,
                     tracing: Tracing) -> AsyncIterator[httpx.AsyncClient]:
    from workers.main import build_worker
    client = Client(**{**env.client.config(), "interceptors": [tracing.interceptor]})
    app = create_app(settings, temporal_client=client, clock=env.get_current_time,
                     tracing=tracing)
    async with build_worker(client, settings):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://api") as http:
            yield http


def _route(span: ReadableSpan) -> str | None:
    return (span.attributes or {}).get("http.route")


def _url(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("url.full") or attributes.get("http.url") or "")


async def test_one_cancel_call_is_one_trace(traced_api: httpx.AsyncClient, org: Org,
                                            exporter: InMemorySpanExporter) -> None:
    customer = await create_customer(traced_api, org)
    sub = await create_subscription(traced_api, org, customer["id"])
    exporter.clear()

    r = await traced_api.post(f"/v1/subscriptions/{sub['id']}/cancel",
                              json={"mode": "immediately", "refund": "prorated"},
                              headers=org.owner)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled"

    def server_span() -> ReadableSpan | None:
        return next((s for s in exporter.get_finished_spans()
                     if s.kind == SpanKind.SERVER and _route(s) == CANCEL_ROUTE
                     and s.parent is None), None)

    async def api_span() -> ReadableSpan | None:
        return server_span()

    root = await settle(api_span)
    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]

    # One trace: everything the cancel call caused shares the API span's trace id. The one
    # span outside is the run's own end: workflow lifecycle spans (RunWorkflow, then
    # CompleteWorkflow) belong to the trace of the call that started the run.
    outside = [s for s in spans if s.context.trace_id != root.context.trace_id]
    assert [s.name for s in outside] == ["CompleteWorkflow:Subscription"]
    spans = [s for s in spans if s not in outside]
    names = [s.name for s in spans]
    # ... and hangs together: every span's parent is a span of the trace, up to the API's.
    by_id = {s.context.span_id: s for s in spans}
    for s in spans:
        assert s is root or (s.parent is not None and s.parent.span_id in by_id), s.name

    def under(span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in spans if s.parent is not None and s.parent.span_id ==
                span.context.span_id]

    assert "StartWorkflowUpdate:cancel" in names
    assert "HandleUpdate:cancel" in names
    refund = next(s for s in spans if s.name == "RunActivity:refund")
    stripe_calls = [s for s in under(refund) if s.name == "POST"
                    and "/v1/refunds" in _url(s)]
    assert stripe_calls, [(s.name, s.attributes) for s in under(refund)]
    effects = next(s for s in spans if s.name == "RunActivity:apply_effects")
    writes = [s for s in under(effects)
              if str((s.attributes or {}).get("db.statement", "")).startswith("INSERT")]
    assert writes, [(s.name, s.attributes) for s in under(effects)]


def test_tracing_is_off_unless_enabled(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    monkeypatch.delenv("SUBS_TRACING__ENABLED", raising=False)
    assert Settings(_env_file=None).tracing.enabled is False
    assert start(TracingSettings(), "x", get_engine(sqlite_url)) is None
    monkeypatch.setenv("SUBS_TRACING__ENABLED", "true")
    monkeypatch.setenv("SUBS_TRACING__EXPORTER", "console")
    assert Settings(_env_file=None).tracing == TracingSettings(enabled=True, exporter="console")
