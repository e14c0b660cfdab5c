"""The catalog's 20-second demo plan on the real worker: renewals every 20 s, each charged
once, its included credits granted for the period and forfeited at its end (D15); after an
end-of-term cancel, purchased credits lock (D16, policy ``lock``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.model import Status
from domain.requests import Cancel
from ledger.service import Ledger
from tests.workflows.scenario import demo_plan

pytestmark = pytest.mark.temporal


async def test_demo_plan_renews_every_20_seconds_with_period_credits(scenario):
    plan = demo_plan()
    first = await scenario.start(plan)
    ledger = Ledger(scenario.engine, scenario.settings.credits)
    customer = first.customer_id
    assert first.current_period_end - first.current_period_start == timedelta(seconds=20)

    await scenario.sleep_until(first.anchor_boundary(3) + timedelta(seconds=1))
    fourth = await scenario.until(lambda s: s.period_index == 3 and s.awaiting_charge is None)
    assert fourth.status == Status.ACTIVE
    charges = scenario.charges()
    assert [(c.period_key, c.status, c.amount) for c in charges] == [
        (first.anchor_boundary(i).strftime("%Y%m%dT%H%M%SZ"), "succeeded", plan.amount)
        for i in range(4)]
    now = await scenario.now()
    held = ledger.balances(customer, now)
    assert held.subscription == plan.included_credits  # earlier periods' credits forfeited

    ledger.purchase_topup(customer, 300, f"{scenario.sub_id}:topup", now)
    await scenario.send(Cancel(mode="at_period_end"))
    await scenario.sleep_until(fourth.current_period_end + timedelta(seconds=1))
    final = await scenario.finished()
    assert final.status == Status.CANCELED and final.ended_at == fourth.current_period_end
    after = ledger.balances(customer, await scenario.now())
    assert (after.subscription, after.purchased, after.locked_purchased) == (0, 0, 300)
    assert len(scenario.charges()) == 4
