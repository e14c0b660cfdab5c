"""The application factory: ``create_app()`` for uvicorn, ``create_app(settings, ...)`` in tests.

One Temporal client per process: the lifespan connects it once and keeps it on ``app.state``
(every request shares its connection); tests inject the time-skipping server's client, a
clock and, if they want, their own payment and ledger services. With settings.tracing on (or
a ``tracing`` passed in) every request is a trace that the Temporal client carries on
(workflows.telemetry, README "Tracing").
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import access, codec, observability, outages, problems
from api.portal import pages as portal_pages
from api.deps import Clock
from api.limits import BodyLimit, RateLimiter
from api.routes import (
    credits,
    customers,
    entitlements,
    events,
    invoices,
    meta,
    organizations,
    portal_sessions,
    subscription_payment,
    subscriptions,
    webhook_deliveries,
    webhook_endpoints,
    webhooks,
)
from config.plans import load_catalog
from config.settings import Settings, get_settings
from ledger.service import Ledger
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from store.migrate import upgrade
from workflows.connection import connect
from workflows.telemetry import Tracing
from workflows.telemetry import start as start_tracing

log = logging.getLogger("api")

DESCRIPTION = """
Subscriptions that live as durable workflows: create customers and subscriptions, cancel
(immediately, at period end, at a date), reactivate before the end, postpone, preview what a
cancellation affects, and use or top up credits.

Authenticate with `Authorization: Bearer <api key>`. Every error is
`application/problem+json` (RFC 9457): `code` names the rule, `errors` the offending fields.
Requests that change a subscription accept an `Idempotency-Key` header: a retried call with the
same key answers with the first outcome instead of acting twice.
"""


async def wall_clock() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings | None = None, *, temporal_client: Client | None = None,
               clock: Clock | None = None, payments: PaymentService | None = None,
               ledger: Ledger | None = None, tracing: Tracing | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = get_engine(settings.database_url)
    tracing = tracing or start_tracing(settings.tracing, "subscription-engine-api", engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await run_in_threadpool(upgrade, settings.database_url)
        if app.state.temporal is None:
            app.state.temporal = await connect(settings, tracing=tracing)
            log.info("connected to Temporal at %s", settings.temporal.address)
        yield

    # Swagger UI and ReDoc from the fastapi-offline package's own copies (/docs, /redoc):
    # FastAPI's default pages load them from a CDN and stay blank without the internet.
    app = FastAPIOffline(
        title="Subscription engine API", version="1.0.0", description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "customers", "description": "Customers and their payment methods."},
            {"name": "subscriptions", "description": "The subscription lifecycle (D1-D11)."},
            {"name": "credits", "description": "Subscription and purchased credits (D15-D20)."},
            {"name": "organizations", "description": "Organizations (D22)."},
            {"name": "meta", "description": "The plan catalog and problem types."},
            {"name": "webhooks", "description": "Signed events from Stripe."},
            {"name": "webhook endpoints",
             "description": "Where your organization receives its signed events (D8)."},
        ],
    )
    app.state.settings = settings
    app.state.catalog = load_catalog(settings.plans_file)
    app.state.temporal = temporal_client
    app.state.clock = clock or wall_clock
    app.state.payments = payments or PaymentService(
        engine, StripeGateway(settings.stripe, engine=engine))  # the deployment's Stripe budget
    app.state.ledger = ledger or Ledger(engine, settings.credits)
    app.state.rate_limiter = RateLimiter(settings.api.rate_limit_per_second,
                                         settings.api.rate_limit_burst)
    problems.install(app)
    outages.install(app)
    # Before anything reads a body; inside the access log and metrics, which count its 413s.
    app.add_middleware(BodyLimit, settings=settings.api)
    observability.install(app)
    if tracing:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracing.provider,
                                           excluded_urls="/metrics",
                                           exclude_spans=["receive", "send"])
    for module in (customers, subscriptions, subscription_payment, credits, organizations, meta,
                   webhooks, webhook_endpoints, entitlements, events, webhook_deliveries,
                   invoices, portal_sessions, codec):
        access.document(module.router)
        app.include_router(module.router)
    access.document(app.router)
    portal_pages.install(app)  # the customer portal's pages (not in the OpenAPI document)
    access.routes(app)  # every route has an access rule, or the app does not start
    return app
