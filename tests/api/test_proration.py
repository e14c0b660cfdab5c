"""Mid-period upgrades through HTTP (rule version 4), with the real worker on the time-skipping
server and localstripe: the preview shows the prorated amount and dates, the upgrade sent with
the preview's `at` charges exactly that amount once and changes the plan now; a downgrade
previews and waits for the period end; another currency, an unknown plan and a declined
proration charge are problem+json answers that change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.proration import prorate
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_subscription,
    dt,
    get_subscription,
    list_events,
)
from tests.fakes_stripe import CARD_DECLINED

pytestmark = pytest.mark.temporal


async def test_preview_then_upgrade_charges_the_previewed_amount_now(api, env, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"], plan="pro-monthly")
    sid = sub["id"]
    start, end = dt(sub["current_period_start"]), dt(sub["current_period_end"])
    await env.sleep(timedelta(days=11, hours=5, seconds=7))

    r = await api.get(f"/v1/subscriptions/{sid}/change_plan/preview",
                      params={"plan": "team-monthly"}, headers=org.member)
    assert r.status_code == 200, r.text
    quote = r.json()
    at = dt(quote["at"])
    assert quote["timing"] == "now" and quote["upgrade"] is True
    assert dt(quote["effective_at"]) == at and dt(quote["next_renewal_at"]) == end
    assert quote["price_difference"] == 3000 and quote["next_renewal_amount"] == 5000
    assert quote["amount_due"] == prorate(3000, start, end, at) > 0
    assert quote["credits_granted"] == prorate(10000, start, end, at) > 0

    await env.sleep(timedelta(seconds=30))  # the customer reads the preview, then confirms
    r = await api.post(f"/v1/subscriptions/{sid}/change_plan",
                       json={"plan": "team-monthly", "proration_date": quote["at"]},
                       headers=org.owner)
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["plan"] == "team-monthly" and changed.get("pending_plan") is None
    assert dt(changed["current_period_end"]) == end  # same period, same anchor
    events = await list_events(api, org, sid)
    paid = [e for e in events if e["type"] == "invoice.paid"]
    assert [e["data"]["previous_attributes"]["amount_paid"] for e in paid] == [
        2000, quote["amount_due"]]
    assert paid[-1]["data"]["previous_attributes"]["billing_reason"] == "subscription_update"
    updated = events[-1]
    assert updated["type"] == "customer.subscription.updated"
    assert updated["data"]["previous_attributes"] == {"plan": "pro-monthly"}
    assert updated["request"]["kind"] == "api_key"
    # The prorated charge is its own paid invoice with one proration line (docs/invoices.md).
    r = await api.get("/v1/invoices", params={"subscription": sid}, headers=org.member)
    newest = r.json()["data"][0]
    assert (newest["status"], newest["total"]) == ("paid", quote["amount_due"]), newest
    assert [(line["kind"], line["plan"], line["amount"]) for line in newest["lines"]] == [
        ("proration", "team-monthly", quote["amount_due"])]

    # Now on the top plan: the same upgrade again is refused, nothing charged twice.
    r = await api.post(f"/v1/subscriptions/{sid}/change_plan", json={"plan": "team-monthly"},
                       headers=org.owner)
    assert_problem(r, 409, code="same_plan")
    assert len([e for e in await list_events(api, org, sid)
                if e["type"] == "invoice.paid"]) == 2


async def test_downgrade_previews_the_period_end_and_refusals_are_problems(api, env, org,
                                                                          settings):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"], plan="pro-monthly")
    sid, end = sub["id"], dt(sub["current_period_end"])
    url = f"/v1/subscriptions/{sid}/change_plan"
    await env.sleep(timedelta(days=3))

    # pro-yearly costs less per month: a downgrade, at the period end, nothing now.
    r = await api.get(f"{url}/preview", params={"plan": "pro-yearly"}, headers=org.owner)
    assert r.status_code == 200, r.text
    quote = r.json()
    assert (quote["timing"], quote["upgrade"], quote["amount_due"],
            quote["credits_granted"]) == ("period_end", False, 0, 0)
    assert dt(quote["effective_at"]) == end and quote["next_renewal_amount"] == 20000

    body = assert_problem(await api.get(f"{url}/preview", params={"plan": "pro-monthly-eur"},
                                        headers=org.owner), 422, code="currency_mismatch")
    assert [e["field"] for e in body["errors"]] == ["plan"]
    assert "EUR" in body["detail"] and "USD" in body["detail"]
    assert_problem(await api.post(url, json={"plan": "pro-monthly-eur"}, headers=org.owner),
                   422, code="currency_mismatch")
    assert_problem(await api.get(f"{url}/preview", params={"plan": "gold"},
                                 headers=org.owner), 422, code="unknown_plan")

    # An upgrade whose proration charge is declined: 402, the plan stays, nothing is emitted.
    before = await list_events(api, org, sid)
    PaymentService(get_engine(settings.database_url),
                   StripeGateway(settings.stripe)).add_test_card(customer["id"], CARD_DECLINED)
    body = assert_problem(await api.post(url, json={"plan": "team-monthly"}, headers=org.owner),
                          402, code="payment_declined")
    assert body["decline_code"] and "stays on plan pro-monthly" in body["detail"]
    current = await get_subscription(api, org, sid)
    assert current["plan"] == "pro-monthly" and current["status"] == "active"
    assert await list_events(api, org, sid) == before
