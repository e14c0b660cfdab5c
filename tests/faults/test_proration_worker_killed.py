"""The worker process is killed (SIGKILL) while an upgrade's prorated charge is in flight
(rule version 4), and a new worker process takes over: the caller's update still gets its
answer, the plan changes, and Stripe holds exactly one proration charge, of the amount the
preview showed.

Real parts throughout, as in test_worker_killed.py: the Temporal dev server, two
``python -m workers.main`` processes, localstripe behind a proxy that holds the proration's
confirm until the first worker is dead and then lets it through (the money moved; no worker
heard of it). The retry runs on the new worker after the heartbeat timeout (10 s) and
reconciles the stored intent instead of charging again.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from domain import lifecycle
from domain.plans import Plan
from domain.requests import ChangePlan
from tests.faults.helpers import books, start, takeover, wait_for
from tests.faults.stripe_proxy import Fault, StripeProxy
from workflows import client_ops

pytestmark = pytest.mark.temporal

PRO = Plan(id="pro", name="Pro", amount=2000, currency="usd", interval="month",
           included_credits=1000)
TEAM = Plan(id="team", name="Team", amount=5000, currency="usd", interval="month",
            included_credits=4000)


async def test_worker_killed_mid_proration_charges_it_once(proxy: StripeProxy, sqlite_url):
    async with takeover(proxy.url, sqlite_url) as t:
        await start(t.env.client, t.settings, t.sub_id, t.customer, PRO)
        state = await wait_for(t.env.client, t.sub_id, lambda s: s.status.value == "active")
        quote = lifecycle.preview_change(state, TEAM, datetime.now(UTC))
        assert quote.timing == "now" and quote.amount_due > 0
        held = Fault("POST", "/v1/payment_intents", "hold", path_suffix="/confirm")
        proxy.inject(held)  # the next confirm is the proration's
        update = asyncio.create_task(client_ops.send(
            t.env.client, t.sub_id, ChangePlan(plan=TEAM, proration_date=quote.at)))

        assert await asyncio.to_thread(held.seen.wait, 20), "no proration charge"
        assert t.first.kill() == -9
        held.release.set()
        assert await asyncio.to_thread(held.forwarded.wait, 10)
        t.second.start()
        after = await asyncio.wait_for(update, 40)  # the caller still gets its answer
        assert after.plan == TEAM and after.upgrade is None

        b = books(t.settings, t.customer, t.sub_id)
        assert b.stripe_succeeded == [PRO.amount, quote.amount_due], b.stripe_succeeded
        assert b.event_types["invoice.paid"] == 2, b.event_types
        assert b.event_seqs == list(range(1, after.event_seq + 1))
        assert sum(b.grants_by_period.values()) == 2  # the period's grant and the upgrade's
        log = t.second.output()
        assert '"attempt": 2' in log and f'"subscription_id": "{t.sub_id}"' in log, log[-3000:]
