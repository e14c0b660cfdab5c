"""Wallet rules that depend on the subscription, through HTTP with the real worker: auto-recharge
during the paid term including while cancelling (D19, D20), never twice for a retried debit,
stopped when the term ends; the free daily allowance after the term (D13, D18). A recharge is
a purchase workflow the debit starts without waiting: its credits arrive shortly after."""

from __future__ import annotations

import pytest

from config.settings import CreditSettings, Settings
from tests.api.helpers import create_customer, create_subscription, settle

pytestmark = pytest.mark.temporal


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"credits": CreditSettings(
        auto_recharge_threshold=1000, auto_recharge_amount=2000)})


async def _balances(api, org, customer_id: str) -> dict:
    r = await api.get(f"/v1/customers/{customer_id}/credits", headers=org.member)
    assert r.status_code == 200, r.text
    return r.json()


async def test_auto_recharge_runs_during_the_paid_term_only(api, org):
    customer = await create_customer(api, org)
    cid = customer["id"]
    sub = await create_subscription(api, org, cid)  # pro-monthly: 5000 credits per period
    await settle(lambda: _subscription_credits(api, org, cid))
    assert (await _balances(api, org, cid))["balances"]["free_daily"] == 0  # paid term

    use = {"amount": 4500, "idempotency_key": "big-job"}
    r = await api.post(f"/v1/customers/{cid}/credits/usage", json=use, headers=org.member)
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == 4500
    recharged = await settle(lambda: _available(api, org, cid, 500 + 2000))  # recharged once
    assert recharged["balances"]["purchased"] == 2000
    again = await api.post(f"/v1/customers/{cid}/credits/usage", json=use, headers=org.member)
    assert again.json()["id"] == r.json()["id"]
    assert again.json()["balance"]["available"] == 2500  # the retry recharged nothing

    # cancelling (non_renewing) is still the paid term: recharge keeps working (D19, D20)
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel",
                       json={"mode": "at_period_end"}, headers=org.owner)
    assert r.status_code == 200, r.text
    r = await api.post(f"/v1/customers/{cid}/credits/usage",
                       json={"amount": 1600, "idempotency_key": "job-2"}, headers=org.member)
    assert r.status_code == 200, r.text
    await settle(lambda: _available(api, org, cid, 900 + 2000))

    # the term ends: no more recharges; purchased credits are locked (D16) and the free
    # daily allowance starts (D13, D18)
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel",
                       json={"mode": "immediately"}, headers=org.owner)
    assert r.status_code == 200, r.text
    after = await settle(lambda: _ended(api, org, cid))
    assert after["balances"]["free_daily"] == 100
    assert after["locked"] == 2900 and after["balances"]["purchased"] == 0
    r = await api.post(f"/v1/customers/{cid}/credits/usage",
                       json={"amount": 100, "idempotency_key": "job-3"}, headers=org.member)
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["available"] == 0  # spent the allowance, nothing recharged


async def _available(api, org, cid, amount: int):
    body = await _balances(api, org, cid)
    return body if body["available"] == amount else None


async def _subscription_credits(api, org, cid):
    return (await _balances(api, org, cid))["balances"]["subscription"] == 5000


async def _ended(api, org, cid):
    body = await _balances(api, org, cid)
    return body if body["balances"]["subscription"] == 0 and body["locked"] else None
