"""The API process is killed (SIGKILL) while it handles a Stripe event, and Stripe's redelivery
reaches another API process: the event is not lost (its claim was a lease, not a tombstone) and
is acted on exactly once.

Real parts throughout: two ``python -m api`` processes with SUBS_* settings (two replicas behind
a load balancer), the Temporal dev server and a worker, SQLite shared by all, localstripe behind
the fault proxy, which holds the handler's read of the customer at Stripe until the process is
dead. A redelivery while the dead handler's lease lasts is told to come back (409, Retry-After);
the one after it takes the event over, adopts the new card and retries the declined first
payment once: one succeeded charge at Stripe, two attempts recorded (the decline, the retry).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid

import httpx
import pytest
from sqlmodel import Session, select

from accounts import keys
from accounts.customers import create_customer
from config.settings import Settings, TemporalSettings
from domain.plans import Plan
from eventlog import store as eventlog
from payments.models import ChargeAttempt
from store.engine import get_engine
from tests.fakes_stripe import CARD_DECLINED, CARD_OK, stripe_settings
from tests.faults.helpers import WorkerProcess, books, new_customer, start, wait_for, worker_env
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.support.stripe_webhooks import PATH, Stripe, event, signed
from tests.support.temporal import dev_server_env
from webhooks import store as webhook_store
from workers.main import build_worker

pytestmark = pytest.mark.temporal

LEASE = 6  # seconds: the dead handler holds the event this long
PLAN = Plan(id="webhook-fault", name="Monthly", amount=900, currency="usd", interval="month",
            interval_count=1, included_credits=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """One API replica: ``python -m api`` on its own port."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = WorkerProcess(worker_env(
            settings, SUBS_API_HOST="127.0.0.1", SUBS_API_PORT=str(self.port),
            SUBS_STRIPE__WEBHOOK_LEASE_SECONDS=str(LEASE)), module="api").start()

    async def ready(self, timeout: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(base_url=self.url) as http:
            while loop.time() < deadline:
                assert self.process.proc.poll() is None, self.process.output()[-3000:]
                try:
                    if (await http.get("/openapi.json")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"API not up: {self.process.output()[-3000:]}")

    def deliver(self, payload: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url + PATH, content=payload, headers=headers, timeout=30)


async def test_webhook_handler_killed_then_redelivered_to_another_api(proxy: StripeProxy,
                                                                     sqlite_url):
    env = await dev_server_env()
    settings = Settings(
        database_url=sqlite_url, stripe=stripe_settings(proxy.url),
        temporal=TemporalSettings(address=env.client.service_client.config.target_host,
                                  task_queue=f"hooks-{uuid.uuid4().hex[:8]}"))
    engine = get_engine(sqlite_url)
    org, _ = keys.create_organization_with_owner(engine, "Acme")
    customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
    create_customer(engine, org.id, "ada@example.com", "Ada", customer_id=customer)
    new_customer(settings, customer, CARD_DECLINED)
    first, second = Api(settings), Api(settings)
    try:
        async with build_worker(env.client, settings):
            await start(env.client, settings, sub_id, customer, PLAN, organization_id=org.id)
            await wait_for(env.client, sub_id, lambda s: s.status.value == "incomplete")
            await wait_for(env.client, sub_id, lambda s: (
                eventlog.get_view(engine, sub_id).status == "incomplete"))
            await asyncio.gather(first.ready(), second.ready())

            at_stripe = Stripe(settings)
            good = at_stripe.attach(customer, CARD_OK)  # the customer fixes the card at Stripe
            evt = event("customer.updated", at_stripe.customer(customer))
            held = Fault("GET", f"/v1/customers/{at_stripe.stripe_id(customer)}", "hold")
            proxy.inject(held)
            threading.Thread(target=_delivery_that_dies, args=(first, evt, settings),
                             daemon=True).start()
            assert await asyncio.to_thread(held.seen.wait, 20), "the handler never read Stripe"
            assert first.process.kill() == -9
            held.release.set()
            claimed = webhook_store.get(engine, evt["id"])
            assert (claimed.outcome, claimed.attempts) == (None, 1)

            # Stripe redelivers to the other replica: while the lease lasts, "come back later".
            r = await asyncio.to_thread(second.deliver, *signed(evt, _secret(settings)))
            assert r.status_code == 409, r.text
            assert r.json()["code"] == "event_in_progress"
            assert 1 <= int(r.headers["Retry-After"]) <= LEASE
            assert at_stripe.local_default(customer) != good

            # ... and after it (Stripe's retries, compressed): taken over and acted on once.
            r = await _redeliver_until_accepted(second, evt, settings)
            body = r.json()
            assert (body["duplicate"], body["handled"]) == (False, True), r.text
            assert body["retried_subscriptions"] == [sub_id]
            final = await wait_for(env.client, sub_id, lambda s: s.status.value == "active")
            again = await asyncio.to_thread(second.deliver, *signed(evt, _secret(settings)))
            assert again.status_code == 200 and again.json()["duplicate"] is True

        b = books(settings, customer, sub_id)
        assert b.stripe_succeeded == [PLAN.amount], b.stripe_succeeded
        assert b.charges_by_period == {final.period_key: 1}
        attempts = _attempts(engine, sub_id)
        assert attempts == ["declined", "succeeded"], attempts
        assert at_stripe.local_default(customer) == good
        row = webhook_store.get(engine, evt["id"])
        assert row.attempts == 2 and row.outcome == f"default payment method is now {good}"
    finally:
        first.process.stop()
        second.process.stop()
        await env.shutdown()


def _secret(settings: Settings) -> str:
    return settings.stripe.webhook_secret


def _delivery_that_dies(api: Api, evt, settings: Settings) -> None:
    try:
        api.deliver(*signed(evt, _secret(settings)))
    except httpx.TransportError:
        pass  # the process was killed mid handler: no answer (Stripe will redeliver)


async def _redeliver_until_accepted(api: Api, evt, settings: Settings,
                                    timeout: float = 3 * LEASE) -> httpx.Response:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        r = await asyncio.to_thread(api.deliver, *signed(evt, _secret(settings)))
        if r.status_code != 409:
            assert r.status_code == 200, r.text
            return r
        assert loop.time() < deadline, f"still in progress after {timeout} s"
        await asyncio.sleep(min(float(r.headers["Retry-After"]), 0.5))


def _attempts(engine, sub_id: str) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(ChargeAttempt).where(ChargeAttempt.subscription_id == sub_id)
                            .order_by(ChargeAttempt.id)).all()
    return [a.status for a in rows]
