"""PostgreSQL goes away for 30 s in the middle of a renewal burst: its connections are refused
(tests/faults/tcp_proxy.py closes the port, exactly as a stopped server; pooled connections
break) while a real worker process renews subscriptions on the Temporal dev server and the
HTTP API answers its callers.

Meanwhile the API answers 503 problem+json with Retry-After. Afterwards every renewal completes
exactly once (one charge at Stripe, one charge record, one credit grant per paid period, every
event once) and nothing stays held: the outage is shorter than the alarm bound, so the
workflow's writes (the local activity) and the charge activities were simply retried.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import httpx
import pytest

from accounts import keys
from api.app import create_app
from config.settings import Settings, TemporalSettings
from domain.plans import Plan
from domain.requests import Cancel
from store.engine import get_engine
from tests.api.helpers import assert_problem, bearer
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.faults.helpers import (WorkerProcess, assert_exactly_once, books, new_customer, start,
                                  wait_for, worker_env)
from tests.faults.tcp_proxy import TcpProxy
from tests.support.temporal import dev_server_env
from workflows import client_ops

pytestmark = [pytest.mark.temporal, pytest.mark.postgres]

N = 6
PERIOD = 6  # seconds
OUTAGE = 30.0  # seconds
PLAN = Plan(id="outage-fast", name="Fast", amount=500, currency="usd", interval="second",
            interval_count=PERIOD, included_credits=20)


async def test_database_outage_during_a_renewal_burst(postgres_url, localstripe_url):
    env = await dev_server_env()
    with TcpProxy("127.0.0.1", 5432) as proxy:
        through_proxy = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        settings = Settings(
            database_url=through_proxy, stripe=stripe_settings(localstripe_url),
            temporal=TemporalSettings(address=env.client.service_client.config.target_host,
                                      task_queue=f"outage-{uuid.uuid4().hex[:8]}",
                                      api_timeout_seconds=5))
        direct = settings.model_copy(update={"database_url": postgres_url})
        worker = WorkerProcess(worker_env(settings)).start()
        app = create_app(settings, temporal_client=env.client)
        _, owner = keys.create_organization_with_owner(get_engine(postgres_url), "Acme")
        try:
            subs = [(f"cus_{uuid.uuid4().hex[:8]}", f"sub_{uuid.uuid4().hex[:8]}")
                    for _ in range(N)]
            for customer, sub_id in subs:
                new_customer(direct, customer, CARD_OK)
                await start(env.client, settings, sub_id, customer, PLAN)
            firsts = [await wait_for(env.client, sub_id, lambda s: s.status.value == "active",
                                     timeout=60)  # the worker process starts first
                      for _, sub_id in subs]
            # Refuse just before the first renewal falls due: the burst meets the outage.
            first_end = min(s.current_period_end for s in firsts)
            now = await env.get_current_time()
            await asyncio.sleep(max((first_end - now).total_seconds() - 0.5, 0))
            proxy.refuse()
            refused_at = time.monotonic()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
                answers = []
                while time.monotonic() - refused_at < OUTAGE:  # the outage lasts 30 s
                    r = await http.get("/v1/subscriptions", headers=bearer(owner))
                    answers.append(r)
                    await asyncio.sleep(2)
                proxy.accept()
                r = await http.get("/v1/subscriptions", headers=bearer(owner))
                assert r.status_code == 200, r.text
            for r in answers:
                assert_problem(r, 503, code="database_unavailable")
                assert int(r.headers["Retry-After"]) > 0

            # Every subscription catches up: the periods that fell due during the outage are
            # renewed (the customers kept access), none held.
            caught_up = []
            for _, sub_id in subs:
                caught_up.append(await wait_for(
                    env.client, sub_id, lambda s: s.hold is None and s.awaiting_charge is None
                    and s.period_index >= 2, timeout=120))
            for _, sub_id in subs:
                await client_ops.signal(env.client, sub_id, Cancel(mode="immediately"))
            finals = [await asyncio.wait_for(client_ops.handle(env.client, sub_id).result(), 60)
                      for _, sub_id in subs]
        finally:
            worker.stop()
            await env.shutdown()
    log = worker.output()
    for (customer, sub_id), final in zip(subs, finals):
        assert final.status.value == "canceled" and final.hold is None, final
        assert_exactly_once(books(direct, customer, sub_id), final,
                            periods=final.period_index + 1, amount=PLAN.amount)
    assert "subscription held" not in log, log[-3000:]
    # the outage really met the burst: the worker's database calls failed and were retried
    assert "Connection refused" in log or "connection failed" in log, log[-3000:]
    assert min(s.period_index for s in caught_up) >= 2
