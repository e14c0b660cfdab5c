"""What a caller gets when something fails: every answer comes within the deadline and says
what to do next.

No worker polling (a stuck workflow looks the same to the API): create, read and update answer
504 with ``Retry-After`` after ``temporal.api_timeout_seconds``, and a retry with the same
Idempotency-Key once the worker is back gets the outcome, applied once. Who may change a
subscription comes from the read model, so another organization's update is refused without
asking the workflow at all. The database unreachable (a real PostgreSQL behind a proxy that
refuses connections) is a 503; Temporal gone is a 503/504; a bug is a logged 500. None of them
carries the dependency's own error text.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from accounts import keys
from api.app import create_app
from config.settings import Settings
from store.engine import get_engine
from tests.api.helpers import (
    Org,
    assert_problem,
    bearer,
    create_customer,
    create_subscription,
    list_events,
    settle,
)
from tests.faults.tcp_proxy import TcpProxy
from tests.support.temporal import dev_server_env, time_skipping_env
from workers.main import build_worker

DEADLINE = 2.0
MARGIN = 3.0  # scheduling on a loaded machine; a hang would take far longer


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal": settings.temporal.model_copy(
        update={"api_timeout_seconds": DEADLINE})})


async def timed(call) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await call
    return response, time.monotonic() - started


def assert_retry_later(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body = assert_problem(r, status, code=code, type="/problems/upstream-unavailable")
    assert int(r.headers["Retry-After"]) > 0
    return body


async def until_answered(call) -> httpx.Response:
    """What a client does with a 504: retry (same Idempotency-Key) until there is an answer."""
    async def answered():
        r = await call()
        return r if r.status_code != 504 else None
    return await settle(answered, timeout=30)


@pytest.fixture
async def dev_http(settings: Settings) -> AsyncIterator[tuple[WorkflowEnvironment,
                                                               httpx.AsyncClient]]:
    """The app on the dev server (real time): the time-skipping server never hands a
    workflow task held for a stopped worker (its sticky queue) to the next one."""
    env = await dev_server_env()
    try:
        transport = httpx.ASGITransport(app=create_app(settings, temporal_client=env.client))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield env, http
    finally:
        await env.shutdown()


async def test_no_worker_answers_504_in_time_and_a_retry_gets_the_outcome_once(
        dev_http, settings, org, other_org):
    env, http = dev_http
    customer = await create_customer(http, org)
    create = {"customer": customer["id"], "plan": "pro-monthly"}
    key = {**org.owner, "Idempotency-Key": "create-1"}
    r, took = await timed(http.post("/v1/subscriptions", json=create, headers=key))
    body = assert_retry_later(r, 504, "temporal_timeout")
    assert took < DEADLINE + MARGIN
    assert "Timeout" not in body["detail"]  # generic, not the SDK's text
    sid = body["subscription"]  # started: the same key (or a GET) finds it
    r, took = await timed(http.get(f"/v1/subscriptions/{sid}", headers=org.member))
    assert_retry_later(r, 504, "temporal_timeout")
    assert took < DEADLINE + MARGIN

    async with build_worker(env.client, settings):
        r = await until_answered(lambda: http.post("/v1/subscriptions", json=create,
                                                   headers=key))
        assert r.status_code == 201, r.text
        assert r.json()["id"] == sid and r.json()["status"] == "active"

    # The worker is gone again. Another organization is refused from the read model alone:
    # asking the workflow anything would have waited out the deadline and answered 504.
    cancel = f"/v1/subscriptions/{sid}/cancel"
    r, took = await timed(http.post(cancel, json={"mode": "immediately"},
                                    headers=other_org.owner))
    assert_problem(r, 404, code="subscription_not_found")
    assert took < DEADLINE
    key = {**org.owner, "Idempotency-Key": "cancel-1"}
    r, took = await timed(http.post(cancel, json={"mode": "immediately"}, headers=key))
    assert_retry_later(r, 504, "temporal_timeout")
    assert took < DEADLINE + MARGIN

    async with build_worker(env.client, settings):
        r = await until_answered(lambda: http.post(cancel, json={"mode": "immediately"},
                                                   headers=key))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "canceled"
        again = await http.post(cancel, json={"mode": "immediately"}, headers=key)
        assert again.status_code == 200 and again.json() == r.json()
    deleted = [e for e in await list_events(http, org, sid)
               if e["type"] == "customer.subscription.deleted"]
    assert len(deleted) == 1


async def test_create_answers_once_the_first_charge_settled_and_it_is_listed(api, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    assert sub["status"] == "active"
    # No settle(): the read model has it the moment create answers.
    listed = (await api.get("/v1/subscriptions", headers=org.member)).json()["data"]
    assert [(s["id"], s["status"]) for s in listed] == [(sub["id"], "active")]
    types = [e["type"] for e in await list_events(api, org, sub["id"])]
    assert types[0] == "customer.subscription.created" and "invoice.paid" in types


async def test_a_bug_is_a_logged_500_problem_without_its_text(env, settings, caplog):
    app = create_app(settings, temporal_client=env.client, clock=env.get_current_time)

    @app.get("/boom")
    async def boom() -> None:
        raise TypeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        with caplog.at_level(logging.ERROR, logger="api"):
            r = await client.get("/boom")
    body = assert_problem(r, 500, type="/problems/internal-error")
    assert "secret" not in r.text and "Retry-After" not in r.headers
    assert body["detail"] == "an internal error occurred"
    [record] = [rec for rec in caplog.records if rec.name == "api"]
    assert record.exc_info and record.exc_info[0] is TypeError  # the traceback is logged


@pytest.fixture
def database(postgres_url: str):
    """The test's PostgreSQL database, reached through a proxy that can refuse connections."""
    with TcpProxy("127.0.0.1", 5432) as proxy:
        yield proxy, postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")


async def test_database_unreachable_is_a_503_with_retry_after(env, settings, database):
    proxy, url = database
    settings = settings.model_copy(update={"database_url": url})
    org, owner = keys.create_organization_with_owner(get_engine(url), "Acme")
    app: FastAPI = create_app(settings, temporal_client=env.client, clock=env.get_current_time)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        assert (await client.get("/v1/subscriptions", headers=bearer(owner))).status_code == 200
        proxy.refuse()  # PostgreSQL "goes away": pooled connections break, new ones refused
        for method, path, body in (("GET", "/v1/subscriptions", None),
                                   ("POST", "/v1/customers", {"email": "a@example.com", "name": "Ada"})):
            r, took = await timed(client.request(method, path, json=body,
                                                 headers=bearer(owner)))
            problem = assert_retry_later(r, 503, "database_unavailable")
            assert took < MARGIN
            assert str(proxy.port) not in problem["detail"]
        proxy.accept()
        r = await client.get("/v1/subscriptions", headers=bearer(owner))
        assert r.status_code == 200, r.text


async def test_temporal_gone_is_a_503_or_504_in_time(settings, org: Org):
    env = await time_skipping_env()
    app = create_app(settings, temporal_client=env.client)  # the wall clock: the server goes
    transport = httpx.ASGITransport(app=app)
    await env.shutdown()
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        r, took = await timed(client.get("/v1/subscriptions/sub_gone", headers=org.member))
    assert r.status_code in (503, 504), r.text
    assert_retry_later(r, r.status_code, {503: "temporal_unavailable",
                                          504: "temporal_timeout"}[r.status_code])
    assert took < DEADLINE + MARGIN
