"""Plan change at period end through HTTP, with the real worker on the time-skipping server:
a non_renewing monthly subscription switched to the yearly plan is active again at once (D11),
nothing is charged until the renewal, which charges the yearly price on a new yearly cycle;
unknown plans are 422 naming `plan`, members are 403; the `change_plan` signal takes the same
path as the update."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.periods import boundary
from domain.plans import Plan
from domain.requests import ChangePlan
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_subscription,
    dt,
    get_subscription,
    list_events,
    settle,
)
from workflows import client_ops

pytestmark = pytest.mark.temporal


async def test_non_renewing_to_yearly_is_active_and_renews_at_the_new_price(api, env, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"], plan="pro-monthly")
    sid, end = sub["id"], dt(sub["current_period_end"])
    url = f"/v1/subscriptions/{sid}/change_plan"

    r = await api.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "at_period_end"},
                       headers=org.owner)
    assert r.status_code == 200 and r.json()["status"] == "non_renewing", r.text
    body = assert_problem(await api.post(url, json={"plan": "gold"}, headers=org.owner), 422,
                          code="unknown_plan")
    assert [e["field"] for e in body["errors"]] == ["plan"]
    r = await api.post(url, json={"plan": "pro-yearly"}, headers=org.member)
    assert r.status_code == 403, r.text

    r = await api.post(url, json={"plan": "pro-yearly"}, headers=org.billing_admin)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["status"] == "active" and changed["cancel_at"] is None  # D11
    assert changed["plan"] == "pro-monthly" and changed["pending_plan"] == "pro-yearly"
    assert changed["renewal"]["line"] == f"Renewing on {end.isoformat()}"
    updated = (await list_events(api, org, sid))[-1]
    assert updated["type"] == "customer.subscription.updated"
    assert updated["data"]["previous_attributes"]["status"] == "non_renewing"
    paid = [e for e in await list_events(api, org, sid) if e["type"] == "invoice.paid"]
    assert len(paid) == 1  # nothing charged for the change itself

    await env.sleep(end - await env.get_current_time() + timedelta(hours=1))

    async def renewed():
        current = await get_subscription(api, org, sid)
        return current if current["plan"] == "pro-yearly" and \
            dt(current["current_period_start"]) == end else None

    current = await settle(renewed)
    assert current["status"] == "active" and current["pending_plan"] is None
    assert dt(current["current_period_end"]) == boundary(end, "year", 1, 1)
    assert dt(current["billing_cycle_anchor"]) == end
    paid = [e for e in await list_events(api, org, sid) if e["type"] == "invoice.paid"]
    assert [e["data"]["previous_attributes"]["amount_paid"] for e in paid] == [2000, 20000]

    # The signal takes the same inbox path: back to monthly at the next (yearly) renewal.
    monthly = Plan(id="pro-monthly", name="Pro (monthly)", amount=2000, currency="usd",
                   interval="month", included_credits=5000)
    await client_ops.signal(env.client, sid, ChangePlan(plan=monthly))

    async def scheduled():
        state = await client_ops.get_state(env.client, sid)
        return state if state.pending_plan is not None else None

    assert (await settle(scheduled)).pending_plan.id == "pro-monthly"
