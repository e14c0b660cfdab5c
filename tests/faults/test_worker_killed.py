"""The worker process is killed (SIGKILL) while a renewal's charge is in flight, and a new worker
process takes over: the renewal completes with exactly one charge at Stripe, its credits granted
once and every event recorded once.

Real parts throughout: the Temporal dev server, ``python -m workers.main`` processes with SUBS_*
settings, localstripe behind a proxy that holds the renewal's confirm until the worker is dead
and then lets it through (the money moved; no worker heard of it).

No shortcut: the server notices the abandoned attempt by itself, because the charge heartbeats
(activities.heartbeat) and the dead worker stops; after the heartbeat timeout (10 s, not the
start-to-close timeout) the retry runs on the new worker, reconciles the stored intent, and the
workflow is replayed there.
"""

from __future__ import annotations

import asyncio

import pytest

from domain.plans import Plan
from domain.requests import Cancel
from tests.faults.helpers import assert_exactly_once, books, start, takeover, wait_for
from tests.faults.stripe_proxy import Fault, StripeProxy
from workflows import client_ops

pytestmark = pytest.mark.temporal

PERIOD = 5  # seconds: the renewal comes soon (renewals missed meanwhile catch up; the
#             books are checked per period)
PLAN = Plan(id="fault-fast", name="Fast", amount=700, currency="usd", interval="second",
            interval_count=PERIOD, included_credits=50)


async def test_worker_killed_mid_renewal_then_replaced(proxy: StripeProxy, sqlite_url):
    async with takeover(proxy.url, sqlite_url) as t:
        client, sub_id = t.env.client, t.sub_id
        held = Fault("POST", "/v1/payment_intents", "hold", path_suffix="/confirm")
        await start(client, t.settings, sub_id, t.customer, PLAN)
        await wait_for(client, sub_id, lambda s: s.status.value == "active")
        proxy.inject(held)  # the next confirm is the renewal's

        assert await asyncio.to_thread(held.seen.wait, PERIOD + 20), "no renewal charge"
        assert t.first.kill() == -9
        held.release.set()
        assert await asyncio.to_thread(held.forwarded.wait, 10)
        t.second.start()
        # The retry comes after the heartbeat timeout: well under the 60 s of start-to-close
        # the server waited before, with room for the new worker's start.
        await wait_for(client, sub_id, lambda s: s.period_index >= 1
                       and s.awaiting_charge is None, timeout=30)

        # Cancel now (queued behind the renewal: due transitions come before requests) so the
        # books stop moving; the result is the final state once every activity has run.
        await client_ops.signal(client, sub_id, Cancel(mode="immediately"))
        final = await asyncio.wait_for(client_ops.handle(client, sub_id).result(), 40)
        assert final.status.value == "canceled" and final.period_index >= 1
        assert_exactly_once(books(t.settings, t.customer, sub_id), final,
                            periods=final.period_index + 1, amount=PLAN.amount)
        log = t.second.output()
        assert '"message": "charge succeeded"' in log and '"attempt": 2' in log, log[-3000:]
        assert f'"subscription_id": "{sub_id}"' in log
