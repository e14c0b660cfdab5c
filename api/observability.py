"""Request metrics (Prometheus, ``GET /metrics``, behind ``SUBS_METRICS_TOKEN`` when set) and
one JSON access-log line per request.

Both are keyed by the route *template* (``/v1/subscriptions/{subscription_id}``), never the raw
path, so ids do not explode label cardinality; unmatched paths are ``unmatched``. The log line
carries the subscription id when the request names one (the path, what a handler put in
``request.state.subscription_ids``, or the body of a 201 that created one), so "everything
for sub_123" is one query across the API and worker logs. A pure ASGI middleware: it sees the
final status, including a crash that the 500 handler answers outside it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import require_token
from workflows.logs import JsonFormatter

access_log = logging.getLogger("api.access")

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """Per app, so several apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("api_requests", "HTTP requests answered, by route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("api_request_duration_seconds",
                                 "Time to answer an HTTP request, by route and status.",
                                 ["method", "route", "status"], buckets=_BUCKETS,
                                 registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


def _log_to_stderr_as_json() -> None:
    if not any(isinstance(h.formatter, JsonFormatter) for h in access_log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def _subscription_ids(scope: Scope) -> list[str]:
    ids = list((scope.get("state") or {}).get("subscription_ids") or [])
    from_path = (scope.get("path_params") or {}).get("subscription_id")
    return [from_path, *ids] if from_path else ids


def _created_subscription(body: bytes) -> str | None:
    """A 201 that created a subscription names it only in its body."""
    if not body.startswith(b"{") or b'"object":"subscription"' not in body:
        return None
    try:
        created = json.loads(body)
    except ValueError:
        return None
    value = created.get("id") if isinstance(created, dict) else None
    return value if isinstance(value, str) else None


class Observe:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, created = time.perf_counter(), 500, None

        async def send_and_note(message: Message) -> None:
            nonlocal status, created
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 201:
                created = created or _created_subscription(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.observe(method, route, status, seconds)
            # The codec's UI route carries its token in the path: log the template instead.
            path = route if route.startswith("/codec/") else scope["path"]
            fields: dict[str, Any] = {"method": method, "route": route, "path": path,
                                      "status": status, "duration_ms": round(seconds * 1000, 2)}
            ids = _subscription_ids(scope) or ([created] if created else [])
            if ids:
                fields["subscription_id"] = ids[0]
                if len(ids) > 1:
                    fields["subscription_ids"] = ids
            access_log.info("%s %s %s", method, route, status, extra=fields)


def install(app: FastAPI) -> None:
    """The middleware, ``GET /metrics`` and the JSON access log."""
    metrics = ApiMetrics()
    app.state.metrics = metrics
    app.add_middleware(Observe, metrics=metrics)
    _log_to_stderr_as_json()

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        require_token(request, request.app.state.settings.metrics_token, "SUBS_METRICS_TOKEN")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
