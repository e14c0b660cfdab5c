"""Credits through HTTP: balances, strict usage (409 with what is available), paid top-ups,
each idempotent by key; the subscription's own credits arrive with its first paid period."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_problem, create_customer, create_subscription, settle
from tests.fakes_stripe import CARD_DECLINED

pytestmark = pytest.mark.temporal


async def test_usage_topups_and_balances(api, org):
    customer = await create_customer(api, org)
    credits = f"/v1/customers/{customer['id']}/credits"
    r = await api.get(credits, headers=org.member)
    assert r.status_code == 200, r.text
    # no paid term: today's free allowance (D18) is all there is
    assert r.json()["available"] == 100 and r.json()["outstanding"] == 0
    assert r.json()["balances"]["free_daily"] == 100

    r = await api.post(f"{credits}/usage", json={"amount": 150, "idempotency_key": "job-1"},
                      headers=org.member)
    body = assert_problem(r, 409, code="insufficient_credits",
                          type="/problems/insufficient-credits")
    assert body["available"] == 100 and body["requested"] == 150

    topup = {"amount": 1000, "idempotency_key": "topup-1"}
    first = await api.post(f"{credits}/topups", json=topup, headers=org.owner)
    assert first.status_code == 200, first.text
    assert first.json()["balance"]["balances"]["purchased"] == 1000
    assert first.json()["payment_intent"]
    again = await api.post(f"{credits}/topups", json=topup, headers=org.owner)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["payment_intent"] == first.json()["payment_intent"]
    assert again.json()["balance"]["available"] == 1100  # neither charged nor credited twice
    r = await api.post(f"{credits}/topups", json={**topup, "amount": 5}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "idempotency_key"

    use = {"amount": 300, "idempotency_key": "job-2"}
    r = await api.post(f"{credits}/usage", json=use, headers=org.member)
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["available"] == 800
    # soonest-expiring first: today's free credits go before purchased ones
    assert r.json()["balance"]["balances"] == {"subscription": 0, "free_daily": 0,
                                               "purchased": 800}
    r = await api.post(f"{credits}/usage", json=use, headers=org.member)
    assert r.json()["balance"]["available"] == 800
    r = await api.post(f"{credits}/usage", json={"amount": 801, "idempotency_key": "job-3"},
                      headers=org.member)
    assert assert_problem(r, 409)["available"] == 800

    for body, field in (({"amount": 0, "idempotency_key": "k"}, "amount"),
                        ({"amount": 5}, "idempotency_key"),
                        ({"amount": 5, "idempotency_key": "has space"}, "idempotency_key"),
                        ({"amount": 5, "idempotency_key": "k",
                          "incurred_at": "2026-01-01T00:00:00"}, "incurred_at")):
        r = await api.post(f"{credits}/usage", json=body, headers=org.member)
        assert assert_problem(r, 422)["errors"][0]["field"] == field
    r = await api.post(f"{credits}/topups", json={
        "amount": 5, "idempotency_key": "old", "expires_at": "2000-01-01T00:00:00Z"},
        headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "expires_at"
    assert (await api.get(credits, headers=org.member)).json()["available"] == 800


async def test_subscription_credits_arrive_with_the_paid_period(api, org):
    customer = await create_customer(api, org)
    await create_subscription(api, org, customer["id"])

    async def granted():
        r = await api.get(f"/v1/customers/{customer['id']}/credits", headers=org.member)
        return r.json() if r.json()["balances"]["subscription"] else None

    balance = await settle(granted)
    assert balance["balances"]["subscription"] == 5000 and balance["available"] == 5000


async def test_a_declined_topup_is_402_and_stays_declined_for_its_key(api, org):
    customer = await create_customer(api, org, card=CARD_DECLINED)
    credits = f"/v1/customers/{customer['id']}/credits"
    topup = {"amount": 700, "idempotency_key": "declined-1"}
    body = assert_problem(await api.post(f"{credits}/topups", json=topup, headers=org.owner),
                          402, code="payment_declined", type="/problems/payment-failed")
    assert body["decline_code"] == "card_declined"
    again = await api.post(f"{credits}/topups", json=topup, headers=org.owner)
    assert assert_problem(again, 402)["detail"] == body["detail"]  # the first outcome
    balance = (await api.get(credits, headers=org.member)).json()
    assert balance["balances"]["purchased"] == 0
