"""GET /metrics counts and times every request by route template and status; the access log
is one JSON object per request, with the subscription id when the request names one."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.app import create_app
from api.observability import access_log
from tests.api.helpers import create_customer, create_subscription
from workflows.logs import JsonFormatter

pytestmark = pytest.mark.temporal


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _labels(method: str, route: str, status: int) -> tuple:
    return tuple(sorted({"method": method, "route": route, "status": str(status)}.items()))


async def test_metrics_by_route_and_status(http, org):
    for _ in range(2):
        assert (await http.get("/v1/plans", headers=org.member)).status_code == 200
    assert (await http.get("/v1/plans")).status_code == 401
    assert (await http.get("/v1/subscriptions/sub_a", headers=org.member)).status_code == 404
    assert (await http.get("/v1/subscriptions/sub_b", headers=org.member)).status_code == 404
    assert (await http.get("/no/such/path/42")).status_code == 404

    r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = _samples(r.text)
    count = "api_requests_total"
    assert samples[(count, _labels("GET", "/v1/plans", 200))] == 2
    assert samples[(count, _labels("GET", "/v1/plans", 401))] == 1
    # Ids are folded into the template: one series for both subscriptions.
    assert samples[(count, _labels("GET", "/v1/subscriptions/{subscription_id}", 404))] == 2
    assert samples[(count, _labels("GET", "unmatched", 404))] == 1
    assert not any("sub_a" in str(key) for key in samples)
    latency = samples[("api_request_duration_seconds_count", _labels("GET", "/v1/plans", 200))]
    assert latency == 2
    assert samples[("api_request_duration_seconds_sum", _labels("GET", "/v1/plans", 200))] > 0


async def test_one_json_line_per_request_with_the_subscription(http, org):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    try:
        await http.get("/v1/subscriptions/sub_missing", headers=org.member)
        await http.post("/v1/customers", json={"email": "x"}, headers=org.owner)
    finally:
        access_log.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["route"] == "/v1/subscriptions/{subscription_id}"
    assert first["path"] == "/v1/subscriptions/sub_missing"
    assert first["status"] == 404 and first["method"] == "GET"
    assert first["subscription_id"] == "sub_missing" and first["duration_ms"] >= 0
    assert first["logger"] == "api.access" and first["level"] == "INFO" and first["ts"]
    assert second["route"] == "/v1/customers" and second["status"] == 422
    assert "subscription_id" not in second


async def test_a_created_subscription_is_named_in_its_log_line(api, org):
    customer = await create_customer(api, org)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access_log.addHandler(handler)
    try:
        sub = await create_subscription(api, org, customer["id"])
    finally:
        access_log.removeHandler(handler)
    (line,) = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert (line["route"], line["status"]) == ("/v1/subscriptions", 201)
    assert line["subscription_id"] == sub["id"]


async def test_metrics_need_the_token_when_one_is_set(env, settings):
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr("scrape-me")}),
                     temporal_client=env.client)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-me"}):
            r = await http.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["content-type"] == "application/problem+json"
            assert "scrape-me" not in r.text
        r = await http.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert r.status_code == 200 and "api_requests_total" in r.text
