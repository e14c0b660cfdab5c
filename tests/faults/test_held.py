"""Stripe refusing a renewal for good, through the whole workflow (Temporal dev server, the
real worker, localstripe behind the fault proxy answering the renewal's create with a
permanent error). No workflow task fails in either case:

- 400 "No such PaymentMethod" (the card was detached or deleted in Stripe): a decline. The
  subscription goes past_due with Stripe's code recorded and dunning retries it (D9).
- 401 (a rotated or wrong key): ours to fix. The subscription is held, findable with one
  visibility query, keeps answering updates (cancel, reactivate), and an operator's retry
  completes the renewal with exactly one succeeded charge.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from config.settings import DunningSettings, Settings, TemporalSettings
from domain.model import SubscriptionState
from domain.plans import Plan
from domain.requests import Cancel, PaymentMethodUpdated, Reactivate, Retry
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.cli.support import run
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.faults.helpers import (assert_exactly_once, books, new_customer, start, wait_for,
                                  worker_env)
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.support.temporal import dev_server_env
from workers.main import build_worker
from workflows import client_ops, contract

pytestmark = pytest.mark.temporal

PERIOD = 4  # seconds
PLAN = Plan(id="held-fast", name="Fast", amount=900, currency="usd", interval="second",
            interval_count=PERIOD, included_credits=10)
NO_SUCH_PM = {"type": "invalid_request_error", "code": "resource_missing",
              "param": "payment_method", "message": "No such PaymentMethod: 'pm_gone'"}
BAD_KEY = {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_live_***"}


@dataclass
class Life:
    """One active subscription on the dev server with the real worker polling."""

    env: WorkflowEnvironment
    settings: Settings
    customer: str
    sub_id: str

    async def state(self, done, timeout: float = PERIOD + 20) -> SubscriptionState:
        return await wait_for(self.env.client, self.sub_id, done, timeout=timeout)

    async def end_and_count(self) -> SubscriptionState:
        """Cancel now so the books stop moving; then no workflow task failed, and one
        succeeded charge, one grant and one invoice.paid per paid period (never the held or
        refused renewal twice)."""
        client = self.env.client
        await client_ops.send(client, self.sub_id, Cancel(mode="immediately"))
        final = await asyncio.wait_for(client_ops.handle(client, self.sub_id).result(), 20)
        async for event in client.get_workflow_handle(
                contract.workflow_id(self.sub_id)).fetch_history_events():
            assert not event.HasField("workflow_task_failed_event_attributes"), event
        assert_exactly_once(books(self.settings, self.customer, self.sub_id), final,
                            periods=final.period_index + 1, amount=PLAN.amount)
        return final


@asynccontextmanager
async def active_subscription(proxy: StripeProxy, sqlite_url: str,
                              alarm_after: timedelta | None = None) -> AsyncIterator[Life]:
    env = await dev_server_env()
    try:
        dunning = DunningSettings(retry_delays=[timedelta(seconds=2)] * 3,  # in seconds
                                  grace_period=timedelta(seconds=30))
        if alarm_after is not None:
            dunning.call_alarm_after = alarm_after
        settings = Settings(
            database_url=sqlite_url, stripe=stripe_settings(proxy.url), dunning=dunning,
            temporal=TemporalSettings(address=env.client.service_client.config.target_host,
                                      task_queue=f"held-{uuid.uuid4().hex[:8]}"))
        life = Life(env, settings, f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}")
        new_customer(settings, life.customer, CARD_OK)
        async with build_worker(env.client, settings):
            await start(env.client, settings, life.sub_id, life.customer, PLAN)
            await life.state(lambda s: s.status.value == "active", timeout=30)
            yield life
    finally:
        await env.shutdown()


async def _held_ids(client: Client) -> list[str]:
    query = 'SubscriptionHeld = true AND ExecutionStatus = "Running"'
    return [w.id async for w in client.list_workflows(query)]


async def _until_held_ids(client: Client, expected: list[str]) -> None:
    for _ in range(100):  # visibility is eventually consistent
        if await _held_ids(client) == expected:
            return
        await asyncio.sleep(0.1)
    assert await _held_ids(client) == expected


async def test_no_such_payment_method_is_a_decline_that_enters_dunning(proxy, sqlite_url):
    async with active_subscription(proxy, sqlite_url) as life:
        proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=400,
                           error=NO_SUCH_PM))
        past_due = await life.state(lambda s: s.status.value == "past_due")
        assert past_due.dunning.last_decline_code == "resource_missing"
        assert past_due.hold is None
        # A hard decline (rule version 3, domain/declines.py): no retry on the schedule, the
        # subscription waits for a new payment method; the new card's charge pays the period.
        assert past_due.dunning.requires == "payment_method"
        assert past_due.dunning.next_retry_at is None
        card = new_customer_card(life.settings, life.customer, CARD_OK)
        await client_ops.send(life.env.client, life.sub_id,
                              PaymentMethodUpdated(payment_method_id=card))
        active = await life.state(lambda s: s.status.value == "active"
                                  and s.period_index == past_due.period_index)
        assert active.dunning is None
        await life.end_and_count()


def new_customer_card(settings: Settings, customer_id: str, card: str) -> str | None:
    """A new default card at Stripe for the customer; its payment method id."""
    payments = PaymentService(get_engine(settings.database_url), StripeGateway(settings.stripe))
    return payments.add_test_card(customer_id, card).default_payment_method


async def test_rejected_key_holds_the_subscription_until_an_operator_retries(proxy, sqlite_url):
    async with active_subscription(proxy, sqlite_url) as life:
        client, sub_id = life.env.client, life.sub_id
        proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=401,
                           error=BAD_KEY))
        held = await life.state(lambda s: s.hold is not None)
        assert held.hold.code == "stripe_authentication" and held.hold.activity == "charge"
        assert held.hold.stripe_request_id.startswith("req_injected_")
        assert held.status.value == "active" and held.period_index == 1
        await _until_held_ids(client, [contract.workflow_id(sub_id)])

        # Nothing moves while held (time stands still), yet updates still answer.
        cancelled = await asyncio.wait_for(client_ops.send(
            client, sub_id, Cancel(mode="at_period_end")), 5)
        assert cancelled.status.value == "non_renewing" and cancelled.hold is not None
        reactivated = await asyncio.wait_for(client_ops.send(client, sub_id, Reactivate()), 5)
        assert reactivated.status.value == "active"

        # What the operator sees, then the retry once the key is fixed (the fault answered
        # once): `subs held`, `subs retry` as run from a shell.
        cli_env = worker_env(life.settings)
        code, out, err = await run(sys.executable, "-m", "cli.main", "held", env=cli_env)
        assert code == 0 and sub_id in out and "stripe_authentication" in out, (out, err)
        assert "req_injected_" in out
        code, out, err = await run(sys.executable, "-m", "cli.main", "retry", sub_id,
                                   env=cli_env)
        assert code == 0 and '"status": "active"' in out, (out, err)
        code, out, err = await run(sys.executable, "-m", "cli.main", "retry", sub_id,
                                   env=cli_env)
        assert code == 2 and "refused (not_held)" in err and "Traceback" not in err
        paid = await life.state(lambda s: s.period_index >= 1 and s.awaiting_charge is None
                                and s.hold is None and s.current_period_paid == PLAN.amount)
        assert paid.status.value == "active"
        await _until_held_ids(client, [])
        await life.end_and_count()


async def test_a_call_failing_past_the_alarm_bound_holds_too(proxy, sqlite_url):
    """Stripe answers 500 to every renewal attempt for longer than the alarm bound (5 s
    here, an hour by default): retried until then, held after, resumed by the retry."""
    async with active_subscription(proxy, sqlite_url, timedelta(seconds=5)) as life:
        proxy.inject(*[Fault("POST", "/v1/payment_intents", "status", status=500)
                       for _ in range(50)])
        held = await life.state(lambda s: s.hold is not None, timeout=PERIOD + 30)
        assert held.hold.code == "call_stalled" and "500" in held.hold.message
        refused = [what for *_, what in proxy.log if what == "status"]
        assert len(refused) >= 2  # it was retried before the alarm
        proxy.faults.clear()
        await client_ops.send(life.env.client, life.sub_id, Retry())
        await life.state(lambda s: s.hold is None and s.period_index >= 1
                         and s.awaiting_charge is None and s.current_period_paid == PLAN.amount)
        await life.end_and_count()
