"""Stripe failing during a renewal, through the whole workflow (real worker, time-skipping
server, localstripe behind a fault-injecting proxy): 500, 429, a lost answer to a create, a
confirm answered after the client's timeout, a failed reconciliation read. The renewal ends with
exactly one charge at Stripe, credits granted once and every event recorded once.

The gateway's classification of each Stripe error is covered by tests/payments/test_gateway.py
and crashes between Stripe calls by tests/payments/test_charge.py; here the faults hit a real
renewal, retried by Temporal with the workflow's retry policy.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from config.plans import load_catalog
from config.settings import DEFAULT_PLANS_FILE, Settings, TemporalSettings
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.faults.helpers import assert_exactly_once, books, new_customer, start, wait_for
from tests.faults.stripe_proxy import Fault
from workers.main import build_worker

pytestmark = pytest.mark.temporal

PLAN = load_catalog(DEFAULT_PLANS_FILE).get("pro-monthly")


async def test_stripe_errors_timeouts_and_lost_responses_during_a_renewal(
        env, proxy, sqlite_url):
    settings = Settings(database_url=sqlite_url,
                        stripe=stripe_settings(proxy.url, request_timeout_seconds=1.0),
                        temporal=TemporalSettings(task_queue=f"faults-{uuid.uuid4().hex[:8]}"))
    customer, sub_id = f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}"
    new_customer(settings, customer, CARD_OK)
    async with build_worker(env.client, settings):
        await start(env.client, settings, sub_id, customer, PLAN)
        state = await wait_for(env.client, sub_id, lambda s: s.status.value == "active")
        faults = [
            Fault("POST", "/v1/payment_intents", "status", status=500),
            Fault("POST", "/v1/payment_intents", "status", status=429),
            # created at Stripe, answer lost: an orphan unconfirmed intent, never paid
            Fault("POST", "/v1/payment_intents", "lose_response"),
            # confirmed at Stripe, answer too late for the 1 s client timeout
            Fault("POST", "/v1/payment_intents", "late_response", delay=2.0,
                  path_suffix="/confirm"),
            # the retry's reconciliation read fails once more
            Fault("GET", "/v1/payment_intents", "status", status=503),
        ]
        proxy.inject(*faults)
        await env.sleep(state.current_period_end - await env.get_current_time()
                        + timedelta(minutes=1))
        state = await wait_for(
            env.client, sub_id, lambda s: s.period_index == 1 and s.awaiting_charge is None
            and s.status.value == "active", timeout=40,
            tick=lambda: env.sleep(timedelta(seconds=30)))
    assert proxy.faults == [], "every injected fault was hit"
    assert [what for *_, what in proxy.log if what != "forwarded"] == [
        "status", "status", "lose_response", "late_response", "status"]
    assert_exactly_once(books(settings, customer, sub_id), state, periods=2, amount=PLAN.amount)
