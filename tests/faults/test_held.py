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
from datetime import timedelta

import pytest
from temporalio.client import Client

from config.settings import DunningSettings, Settings, TemporalSettings
from domain.plans import Plan
from domain.requests import Cancel, Reactivate, Retry
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


def _settings(env, proxy: StripeProxy, sqlite_url: str) -> Settings:
    return Settings(
        database_url=sqlite_url, stripe=stripe_settings(proxy.url),
        # dunning in seconds; a long period would let the held renewal be overtaken
        dunning=DunningSettings(retry_delays=[timedelta(seconds=2)] * 3,
                                grace_period=timedelta(seconds=30)),
        temporal=TemporalSettings(address=env.client.service_client.config.target_host,
                                  task_queue=f"held-{uuid.uuid4().hex[:8]}"))


async def _no_failed_workflow_task(client: Client, sub_id: str) -> None:
    async for event in client.get_workflow_handle(contract.workflow_id(sub_id)).fetch_history_events():
        assert not event.HasField("workflow_task_failed_event_attributes"), event


async def _held_ids(client: Client) -> list[str]:
    query = 'SubscriptionHeld = true AND ExecutionStatus = "Running"'
    return [w.id async for w in client.list_workflows(query)]


async def test_no_such_payment_method_is_a_decline_that_enters_dunning(proxy, sqlite_url):
    env = await dev_server_env()
    try:
        settings = _settings(env, proxy, sqlite_url)
        customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
        new_customer(settings, customer, CARD_OK)
        async with build_worker(env.client, settings):
            await start(env.client, settings, sub_id, customer, PLAN)
            await wait_for(env.client, sub_id, lambda s: s.status.value == "active")
            proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=400,
                               error=NO_SUCH_PM))
            past_due = await wait_for(env.client, sub_id,
                                      lambda s: s.status.value == "past_due", timeout=PERIOD + 20)
            assert past_due.dunning.last_decline_code == "resource_missing"
            assert past_due.hold is None
            # the next dunning attempt (the card works again) pays the same period
            active = await wait_for(env.client, sub_id, lambda s: s.status.value == "active"
                                    and s.period_index == past_due.period_index, timeout=20)
            await client_ops.send(env.client, sub_id, Cancel(mode="immediately"))
            final = await asyncio.wait_for(client_ops.handle(env.client, sub_id).result(), 20)
        await _no_failed_workflow_task(env.client, sub_id)
        assert active.dunning is None
        assert_exactly_once(books(settings, customer, sub_id), final,
                            periods=final.period_index + 1, amount=PLAN.amount)
    finally:
        await env.shutdown()


async def test_rejected_key_holds_the_subscription_until_an_operator_retries(proxy, sqlite_url):
    env = await dev_server_env()
    try:
        settings = _settings(env, proxy, sqlite_url)
        customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
        new_customer(settings, customer, CARD_OK)
        async with build_worker(env.client, settings):
            await start(env.client, settings, sub_id, customer, PLAN)
            await wait_for(env.client, sub_id, lambda s: s.status.value == "active")
            proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=401,
                               error=BAD_KEY))
            held = await wait_for(env.client, sub_id, lambda s: s.hold is not None,
                                  timeout=PERIOD + 20)
            assert held.hold.code == "stripe_authentication" and held.hold.activity == "charge"
            assert held.hold.stripe_request_id.startswith("req_injected_")
            assert held.status.value == "active" and held.period_index == 1

            async def listed() -> bool:
                return await _held_ids(env.client) == [contract.workflow_id(sub_id)]
            for _ in range(100):  # visibility is eventually consistent
                if await listed():
                    break
                await asyncio.sleep(0.1)
            assert await listed()

            # Nothing moves while held (time stands still), yet updates still answer.
            cancelled = await asyncio.wait_for(client_ops.send(
                env.client, sub_id, Cancel(mode="at_period_end")), 5)
            assert cancelled.status.value == "non_renewing" and cancelled.hold is not None
            reactivated = await asyncio.wait_for(client_ops.send(
                env.client, sub_id, Reactivate()), 5)
            assert reactivated.status.value == "active"

            # What the operator sees, then the retry once the key is fixed (the fault
            # answered once): `subs held`, `subs retry` as run from a shell.
            cli_env = worker_env(settings)
            code, out, err = await run(sys.executable, "-m", "cli.main", "held", env=cli_env)
            assert code == 0 and sub_id in out and "stripe_authentication" in out, (out, err)
            assert "req_injected_" in out
            code, out, err = await run(sys.executable, "-m", "cli.main", "retry", sub_id,
                                       env=cli_env)
            assert code == 0 and '"status": "active"' in out, (out, err)
            code, out, err = await run(sys.executable, "-m", "cli.main", "retry", sub_id,
                                       env=cli_env)
            assert code == 2 and "refused (not_held)" in err and "Traceback" not in err
            paid = await wait_for(env.client, sub_id, lambda s: s.period_index >= 1
                                  and s.awaiting_charge is None and s.hold is None
                                  and s.current_period_paid == PLAN.amount)
            assert paid.status.value == "active"
            for _ in range(100):
                if await _held_ids(env.client) == []:
                    break
                await asyncio.sleep(0.1)
            assert await _held_ids(env.client) == []
            await client_ops.send(env.client, sub_id, Cancel(mode="immediately"))
            final = await asyncio.wait_for(client_ops.handle(env.client, sub_id).result(), 20)
        await _no_failed_workflow_task(env.client, sub_id)
        # one succeeded charge per paid period: the first, the retried renewal, and any
        # renewal that came due after the retry; never the held one twice
        assert_exactly_once(books(settings, customer, sub_id), final,
                            periods=final.period_index + 1, amount=PLAN.amount)
    finally:
        await env.shutdown()


async def test_a_call_failing_past_the_alarm_bound_holds_too(proxy, sqlite_url):
    """Stripe answers 500 to every renewal attempt for longer than the alarm bound (5 s
    here, an hour by default): retried until then, held after, resumed by the retry."""
    env = await dev_server_env()
    try:
        settings = _settings(env, proxy, sqlite_url)
        settings.dunning.call_alarm_after = timedelta(seconds=5)
        customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
        new_customer(settings, customer, CARD_OK)
        async with build_worker(env.client, settings):
            await start(env.client, settings, sub_id, customer, PLAN)
            await wait_for(env.client, sub_id, lambda s: s.status.value == "active")
            proxy.inject(*[Fault("POST", "/v1/payment_intents", "status", status=500)
                           for _ in range(50)])
            held = await wait_for(env.client, sub_id, lambda s: s.hold is not None,
                                  timeout=PERIOD + 30)
            assert held.hold.code == "call_stalled" and "500" in held.hold.message
            refused = [what for *_, what in proxy.log if what == "status"]
            assert len(refused) >= 2  # it was retried before the alarm
            proxy.faults.clear()
            await client_ops.send(env.client, sub_id, Retry())
            await wait_for(env.client, sub_id, lambda s: s.hold is None and s.period_index >= 1
                           and s.awaiting_charge is None
                           and s.current_period_paid == PLAN.amount)
            await client_ops.send(env.client, sub_id, Cancel(mode="immediately"))
            final = await asyncio.wait_for(client_ops.handle(env.client, sub_id).result(), 20)
        await _no_failed_workflow_task(env.client, sub_id)
        assert_exactly_once(books(settings, customer, sub_id), final,
                            periods=final.period_index + 1, amount=PLAN.amount)
    finally:
        await env.shutdown()
