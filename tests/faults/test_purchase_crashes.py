"""Credit purchases survive the death of either process that handles them: the API process is
SIGKILLed while its top-up's charge is held at the Stripe proxy, and a worker process is
SIGKILLed while an auto-recharge's charge is held and is replaced. Afterwards every succeeded
charge is credited exactly once, counted from localstripe's charges and from the ledger.

Real parts throughout: the Temporal dev server, ``python -m api`` and ``python -m workers.main``
processes with SUBS_* settings, localstripe behind the fault proxy. Before purchases were
workflows, the API charged in the request thread and wrote the ledger after it: the first
scenario then ended with a paid charge and no credits until somebody retried.

No shortcut in the worker scenario: the charge heartbeats, so the server retries the attempt
the dead worker abandoned on the new one after the heartbeat timeout (10 s).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlmodel import Session, select

from accounts import customers, keys
from api.app import create_app
from config.settings import CreditSettings, Settings, TemporalSettings
from domain import purchases
from domain.plans import Plan
from ledger.models import CreditEntry
from store.engine import get_engine
from tests.api.helpers import settle
from tests.fakes_stripe import CARD_OK, free_port, stripe_settings
from tests.faults.helpers import (WorkerProcess, new_customer, purchase_books, start,
                                  wait_for, worker_env)
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.support.temporal import dev_server_env
from workflows import purchase_ops
from workflows.credit_purchase import workflow_id
from workflows.schedules import RECONCILE_SCHEDULE_ID

pytestmark = pytest.mark.temporal

PLAN = Plan(id="fault-monthly", name="Monthly", amount=900, currency="usd", interval="month",
            included_credits=1000)


@asynccontextmanager
async def stack(proxy: StripeProxy, sqlite_url: str, **settings) -> AsyncIterator[tuple]:
    """A dev server, settings for processes behind the proxy, and an organization's customer
    with a card: (env, settings, customer id, owner's auth header)."""
    env = await dev_server_env()
    config = Settings(
        database_url=sqlite_url, stripe=stripe_settings(proxy.url),
        temporal=TemporalSettings(address=env.client.service_client.config.target_host,
                                  task_queue=f"purchases-{uuid.uuid4().hex[:8]}"), **settings)
    engine = get_engine(sqlite_url)
    org, raw_key = keys.create_organization_with_owner(engine, "Faults")
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    new_customer(config, customer, CARD_OK)
    customers.create_customer(engine, org.id, "ada@example.com", "Ada", customer)
    try:
        yield env, config, customer, {"Authorization": f"Bearer {raw_key}"}
    finally:
        await env.shutdown()


def purchased_entry(settings: Settings, key: str) -> CreditEntry | None:
    with Session(get_engine(settings.database_url)) as session:
        return session.exec(select(CreditEntry).where(CreditEntry.idempotency_key == key)).first()


async def api_up(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/metrics")).status_code == 200
    except httpx.TransportError:
        return False


async def test_api_killed_while_the_topup_charge_is_held(proxy: StripeProxy, sqlite_url):
    async with stack(proxy, sqlite_url) as (env, settings, customer, auth):
        worker = WorkerProcess(worker_env(settings)).start()
        # Two API processes, as behind a load balancer: the retry reaches the one still alive.
        ports = free_port(), free_port()
        apis = [WorkerProcess(worker_env(settings, SUBS_API_PORT=str(port)), module="api")
                .start() for port in ports]
        path = f"/v1/customers/{customer}/credits/topups"
        killed = {"amount": 500, "idempotency_key": "killed"}
        try:
            async with (httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}",
                                          headers=auth, timeout=30) as first,
                        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}",
                                          headers=auth, timeout=30) as second):
                for http in (first, second):
                    await settle(lambda: api_up(http), timeout=60)  # slow on a busy machine
                r = await first.post(path, json={"amount": 300, "idempotency_key": "plain"})
                assert r.status_code == 200, r.text

                held = Fault("POST", "/v1/payment_intents", "hold", path_suffix="/confirm")
                proxy.inject(held)
                cut = asyncio.create_task(first.post(path, json=killed))
                assert await asyncio.to_thread(held.seen.wait, 20), "no top-up charge"
                assert apis[0].kill() == -9
                with pytest.raises(httpx.TransportError):
                    await cut
                held.release.set()
                assert await asyncio.to_thread(held.forwarded.wait, 10)

                # Nobody retries: the purchase finishes by itself in the worker.
                key = purchases.topup_key(customer, "killed")
                entry = await settle(lambda: asyncio.to_thread(purchased_entry, settings, key))
                assert entry.amount == 500

                r = await second.post(path, json=killed)  # the caller's retry joins it
                assert r.status_code == 200, r.text
                assert r.json()["id"] == entry.id and r.json()["payment_intent"]
                assert r.json()["balance"]["balances"]["purchased"] == 800

            charged, credited = purchase_books(settings, customer)
            assert charged == credited == {purchases.topup_key(customer, "plain"): [300],
                                           key: [500]}, (charged, credited)
            # The worker created the reconciliation schedule at start-up.
            described = await env.client.get_schedule_handle(RECONCILE_SCHEDULE_ID).describe()
            assert described.schedule.spec.intervals[0].every == settings.reconcile.interval
        finally:
            for process in (worker, *apis):
                process.stop()


async def test_worker_killed_mid_auto_recharge_then_replaced(proxy: StripeProxy, sqlite_url):
    recharge = CreditSettings(auto_recharge_threshold=500, auto_recharge_amount=700)
    async with stack(proxy, sqlite_url, credits=recharge) as (env, settings, customer, auth):
        first = WorkerProcess(worker_env(settings)).start()
        second = WorkerProcess(worker_env(settings))
        app = create_app(settings, temporal_client=env.client)
        usage = f"/v1/customers/{customer}/credits/usage"
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://api", headers=auth) as http:
                sub_id = f"sub_{uuid.uuid4().hex[:8]}"
                await start(env.client, settings, sub_id, customer, PLAN)
                await wait_for(env.client, sub_id, lambda s: s.status.value == "active",
                               timeout=60)  # the worker process starts first

                async def spendable(amount: int):
                    body = (await http.get(f"/v1/customers/{customer}/credits")).json()
                    return body if body["available"] == amount else None

                await settle(lambda: spendable(1000))  # the period's credits, a paid term

                held = Fault("POST", "/v1/payment_intents", "hold", path_suffix="/confirm")
                proxy.inject(held)
                job = {"amount": 600, "idempotency_key": "job-1"}
                r = await http.post(usage, json=job)
                assert r.status_code == 200, r.text  # the debit does not wait for the recharge
                assert r.json()["balance"]["available"] == 400
                assert await asyncio.to_thread(held.seen.wait, 20), "no recharge charge"
                assert first.kill() == -9
                held.release.set()
                assert await asyncio.to_thread(held.forwarded.wait, 10)  # paid; nobody heard
                second.start()
                key = purchases.auto_recharge_key(customer, r.json()["id"])
                # the dead worker's attempt is retried on the new one after the heartbeat
                # timeout (10 s), well inside the wait below

                await settle(lambda: spendable(400 + 700), timeout=40)
                again = await http.post(usage, json=job)  # a retried debit recharges nothing
                assert again.json()["id"] == r.json()["id"]
                result = await purchase_ops.handle(env.client, key).result()
                assert result.status == "credited" and result.entry.amount == 700

            charged, credited = purchase_books(settings, customer)
            assert charged == credited == {key: [700]}, (charged, credited)
            log = second.output()
            assert '"message": "charge succeeded"' in log and '"attempt": 2' in log, log[-3000:]
            assert '"message": "purchased 700 credits"' in log, log[-3000:]
        finally:
            first.stop()
            second.stop()
