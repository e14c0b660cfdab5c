"""What a top-up answers when its purchase does not end cleanly within the request: Stripe held
past the API's wait (503 problem with Retry-After; the retry with the same key joins the
purchase and gets its outcome), and Stripe refusing our key (502 problem without Stripe's text;
once the key works, the same idempotency key buys). Each time the money is counted at
localstripe: one charge, credited once.

The real app, the real worker on a time-skipping server, localstripe behind the fault proxy.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from accounts import customers, keys
from api.app import create_app
from config.settings import CreditSettings, Settings, TemporalSettings
from domain import purchases
from store.engine import get_engine
from tests.api.helpers import assert_problem
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.faults.helpers import new_customer, purchase_books
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.support.temporal import time_skipping_env
from workers.main import build_worker

pytestmark = pytest.mark.temporal


@pytest.fixture
async def shop(proxy: StripeProxy, sqlite_url) -> AsyncIterator[tuple]:
    """(client, settings, the customer's top-up path) with the worker polling."""
    settings = Settings(database_url=sqlite_url, stripe=stripe_settings(proxy.url),
                        temporal=TemporalSettings(task_queue=f"answers-{uuid.uuid4().hex[:8]}"),
                        credits=CreditSettings(topup_wait_seconds=1.0))
    engine = get_engine(sqlite_url)
    org, raw_key = keys.create_organization_with_owner(engine, "Answers")
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    new_customer(settings, customer, CARD_OK)
    customers.create_customer(engine, org.id, "ada@example.com", "Ada", customer)
    env = await time_skipping_env()
    app = create_app(settings, temporal_client=env.client, clock=env.get_current_time)
    try:
        async with (build_worker(env.client, settings),
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://api",
                                      headers={"Authorization": f"Bearer {raw_key}"}) as http):
            yield http, settings, customer
    finally:
        await env.shutdown()


async def settle(http: httpx.AsyncClient, path: str, body: dict) -> httpx.Response:
    """The request, retried with the same key while it answers 503 purchase_in_progress, as
    the problem tells a client to: the wait here is 1 s, which a purchase that nothing holds
    can still exceed on a loaded machine."""
    for _ in range(30):
        r = await http.post(path, json=body)
        if r.status_code != 503 or r.json().get("code") != "purchase_in_progress":
            return r
    return r


async def test_a_charge_slower_than_the_wait_answers_503_and_the_retry_joins(
        shop, proxy: StripeProxy):
    http, settings, customer = shop
    path = f"/v1/customers/{customer}/credits/topups"
    held = Fault("POST", "/v1/payment_intents", "hold", path_suffix="/confirm")
    proxy.inject(held)
    body = {"amount": 400, "idempotency_key": "slow"}

    r = await http.post(path, json=body)
    problem = assert_problem(r, 503, code="purchase_in_progress")
    assert r.headers["Retry-After"] == "5" and "idempotency_key" in problem["detail"]
    assert held.seen.is_set() and not held.forwarded.is_set()
    r = await http.post(path, json=body)  # still held: the retry waits on the same purchase
    assert_problem(r, 503, code="purchase_in_progress")

    held.release.set()
    r = await settle(http, path, body)
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["balances"]["purchased"] == 400
    charged, credited = purchase_books(settings, customer)
    assert charged == credited == {purchases.topup_key(customer, "slow"): [400]}


async def test_a_refused_api_key_answers_502_then_the_same_key_buys_once_fixed(
        shop, proxy: StripeProxy):
    http, settings, customer = shop
    path = f"/v1/customers/{customer}/credits/topups"
    proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=401))
    body = {"amount": 250, "idempotency_key": "bad-key"}

    r = await http.post(path, json=body)
    problem = assert_problem(r, 502, code="payment_provider_error",
                             type="/problems/upstream-unavailable")
    assert "injected" not in r.text and "Retry-After" in r.headers
    assert "nothing was charged" in problem["detail"]
    r = await http.get(f"/v1/customers/{customer}/credits")
    assert r.json()["balances"]["purchased"] == 0

    # The key works again (the fault is spent): the same request buys, once.
    r = await settle(http, path, body)
    assert r.status_code == 200, r.text
    again = await http.post(path, json=body)
    assert again.json()["id"] == r.json()["id"]
    assert again.json()["balance"]["balances"]["purchased"] == 250
    charged, credited = purchase_books(settings, customer)
    assert charged == credited == {purchases.topup_key(customer, "bad-key"): [250]}
