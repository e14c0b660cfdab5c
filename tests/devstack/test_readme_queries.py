"""The README's Web UI / `temporal workflow list` filters, read out of README.md and run with
the `temporal` CLI against a dev server after several renewals: each renewal is a new run
(continue-as-new) and closed runs keep their search attributes, so a filter must find exactly
one row per subscription, the running one (without `ExecutionStatus = "Running"` it finds
every past run too)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from config.settings import REPO_ROOT, DunningSettings, Settings, TemporalSettings
from domain.plans import Plan
from domain.requests import Cancel, Postpone
from tests.cli.support import run
from tests.fakes_stripe import CARD_DECLINED, CARD_OK, stripe_settings
from tests.faults.helpers import new_customer, start, wait_for
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.support.devserver import DevServer
from tests.support.temporal import venv_binary
from workers.main import build_worker
from workflows import client_ops, contract
from workflows import subscription as subscription_workflow

pytestmark = pytest.mark.temporal

PLAN = Plan(id="readme-fast", name="Fast", amount=300, currency="usd", interval="second",
            interval_count=2, included_credits=10)
RENEWALS = 3  # runs before the states the filters look for: 1 + RENEWALS closed runs each
BAD_KEY = {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_live_***"}
ATTRIBUTE = re.compile(rf"^({'|'.join(contract.SEARCH_ATTRIBUTE_KINDS)}) ")


def readme_filters() -> list[str]:
    """The README's lines that are visibility filters (they start with a search attribute)."""
    text = (REPO_ROOT / "README.md").read_text()
    return [line for line in text.splitlines() if ATTRIBUTE.match(line)]


async def listed(server: DevServer, query: str) -> list[str]:
    code, out, err = await run(venv_binary("temporal"), "workflow", "list", "--query", query,
                               "--address", server.address, "-o", "json")
    assert code == 0, f"{query}: {err}"
    return [row["execution"]["workflowId"] for row in json.loads(out or "[]")]


async def test_each_readme_filter_lists_one_row_per_subscription(tmp_path, localstripe_url,
                                                                   sqlite_url, monkeypatch):
    # Closed runs are what the filters must leave out. Runs span renewals up to a history
    # bound (workflows/subscription.py RUN_EVENTS_BOUND, about a year of a monthly plan): a
    # bound of 10 events here makes each renewal close a run, as years of renewals would.
    monkeypatch.setattr(subscription_workflow, "RUN_EVENTS_BOUND", 10)
    filters = readme_filters()
    assert [f.split(" ", 1)[0] for f in filters] == [
        "SubscriptionStatus", "SubscriptionStatus", "CustomerId", "SubscriptionHeld"], \
        f"the README's filters changed: give each one a subscription here\n{filters}"
    server = DevServer(tmp_path / "temporal.db")
    server.start()
    with StripeProxy(localstripe_url) as proxy:
        try:
            client = await server.connect()
            tag = uuid.uuid4().hex[:8]
            direct = Settings(database_url=sqlite_url, stripe=stripe_settings(localstripe_url),
                              dunning=DunningSettings(retry_delays=[timedelta(hours=1)]),
                              temporal=TemporalSettings(address=server.address,
                                                        task_queue=f"readme-{tag}"))
            # The held subscription's Stripe calls go through a proxy that can answer 401.
            proxied = direct.model_copy(update={
                "stripe": stripe_settings(proxy.url),
                "temporal": TemporalSettings(address=server.address,
                                             task_queue=f"readme-held-{tag}")})
            ids = {name: f"sub_{name}_{tag}" for name in ("canceling", "past_due", "held")}
            customers = {name: f"cus_{name}_{tag}" for name in ids}
            payments = [new_customer(direct, customers[name], CARD_OK) for name in ids][0]
            async with build_worker(client, direct), build_worker(client, proxied):
                for name, sub_id in ids.items():
                    await start(client, proxied if name == "held" else direct, sub_id,
                                customers[name], PLAN)
                for sub_id in ids.values():
                    await wait_for(client, sub_id, lambda s: s.period_index >= RENEWALS
                                   and s.awaiting_charge is None, timeout=RENEWALS * 2 + 30)

                cancel_at = datetime.now(UTC) + timedelta(days=1)
                # non_renewing until a day from now: at period end, then postponed (D5). Both
                # right after a renewal, so the 2 s period cannot end between the two.
                renewed = (await client_ops.get_state(client, ids["canceling"])).period_index
                await wait_for(client, ids["canceling"], lambda s: s.period_index > renewed)
                await client_ops.send(client, ids["canceling"], Cancel(mode="at_period_end"))
                await client_ops.send(client, ids["canceling"], Postpone(cancel_at=cancel_at))
                payments.add_test_card(customers["past_due"], CARD_DECLINED)
                proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=401,
                                   error=BAD_KEY))
                await wait_for(client, ids["canceling"], lambda s: s.status.value ==
                               "non_renewing" and s.cancel_at == cancel_at)
                await wait_for(client, ids["past_due"], lambda s: s.status.value == "past_due"
                               and s.awaiting_charge is None)
                await wait_for(client, ids["held"], lambda s: s.hold is not None)

                expected = [ids["canceling"], ids["past_due"], ids["canceling"], ids["held"]]
                later = (cancel_at + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
                for query, sub_id in zip(filters, expected, strict=True):
                    query = re.sub(r'"\d{4}-\d\d-\d\dT[^"]*"', f'"{later}"', query) \
                        .replace('"cus_123"', f'"{customers["canceling"]}"')
                    rows = await _settled(server, query, [contract.workflow_id(sub_id)])
                    assert rows == [contract.workflow_id(sub_id)], query
                every_run = await listed(server, f'CustomerId = "{customers["canceling"]}"')
                assert len(every_run) > RENEWALS  # the closed runs, without the filter
        finally:
            server.stop()


async def _settled(server: DevServer, query: str, expected: list[str],
                   timeout: float = 15.0) -> list[str]:
    """The rows once the visibility store has caught up (it trails the workflow a little)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows = await listed(server, query)
        if rows == expected or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.3)
