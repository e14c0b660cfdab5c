"""Tracing of one process (API or worker), when settings.tracing.enabled: README "Tracing".

``start`` builds the tracer provider and its exporter, and instruments what leaves the
process besides Temporal: Stripe's HTTP calls (the stripe SDK uses requests) and the
database (SQLAlchemy, one span per statement). The Temporal interceptor it hands out goes on
the process's client, so the worker built on that client traces workflows and activities too;
the API adds FastAPI's instrumentation (api.app). Everything takes the provider explicitly, so
a test can trace into its own in-memory exporter without touching the process-wide provider.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import opentelemetry.trace
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (BatchSpanProcessor, ConsoleSpanExporter,
                                            SimpleSpanProcessor, SpanExporter)
from sqlalchemy.engine import Engine

from config.settings import TracingSettings
from workflows.tracing import RequestTracingInterceptor

log = logging.getLogger("tracing")


@dataclass
class Tracing:
    provider: TracerProvider
    interceptor: RequestTracingInterceptor = field(init=False)

    def __post_init__(self) -> None:
        self.interceptor = RequestTracingInterceptor(self.provider.get_tracer("temporalio"))

    def shutdown(self) -> None:
        """Undo the library instrumentation and flush what is buffered."""
        RequestsInstrumentor().uninstrument()
        SQLAlchemyInstrumentor().uninstrument()
        self.provider.shutdown()


def _exporter(settings: TracingSettings) -> SpanExporter:
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=settings.otlp_endpoint)


def start(settings: TracingSettings, service: str, engine: Engine, *,
          exporter: SpanExporter | None = None) -> Tracing | None:
    """None when tracing is off. ``exporter`` (tests) is exported to span by span and leaves
    the process-wide provider alone; otherwise the settings' exporter is batched and the
    provider becomes the process-wide one."""
    if not settings.enabled and exporter is None:
        return None
    provider = TracerProvider(resource=Resource.create(
        {SERVICE_NAME: settings.service_name or service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(settings)))
        opentelemetry.trace.set_tracer_provider(provider)
        log.info("tracing to %s", settings.otlp_endpoint if settings.exporter == "otlp"
                 else "the console")
    RequestsInstrumentor().instrument(tracer_provider=provider)
    # The instrumentation declares sqlalchemy < 2.1 (untested, not incompatible: it hooks the
    # engine events, unchanged in 2.1); tests/api/test_tracing.py checks its spans.
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider,
                                        skip_dep_check=True)
    return Tracing(provider)
