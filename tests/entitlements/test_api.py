"""D13 through the HTTP API with the real worker: Pro features and team seats through the paid
term (also while cancelling), the free plan after it, content kept, resubscribing restores."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.conftest import api, http, org, settings  # noqa: F401
from tests.api.helpers import create_customer, create_subscription, dt, get_subscription, settle

pytestmark = pytest.mark.temporal


async def test_paid_features_through_the_term_then_the_free_plan(api, env, org):  # noqa: F811
    customer = await create_customer(api, org)
    url = f"/v1/customers/{customer['id']}/entitlements"
    before = (await api.get(url, headers=org.member)).json()
    assert before["plan"] == "free" and before["paid"] is False and before["seats"] == 1

    sub = await create_subscription(api, org, customer["id"], plan="pro-monthly")
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "at_period_end"},
                       headers=org.owner)
    assert r.status_code == 200, r.text
    end = dt(r.json()["cancel_at"])
    during = (await api.get(url, headers=org.member)).json()
    assert during["plan"] == "pro-monthly" and during["paid"] is True  # D2: access kept
    assert during["features"] == ["pro_models", "team_seats"] and during["seats"] is None
    assert dt(during["paid_through"]) == end and during["subscription"] == sub["id"]
    assert during["free_daily_credits"] == 0

    await env.sleep(end - await env.get_current_time() + timedelta(minutes=1))

    async def ended():
        current = await get_subscription(api, org, sub["id"])
        return current if current["status"] == "canceled" else None

    await settle(ended)
    after = (await api.get(url, headers=org.member)).json()
    assert after == {"object": "entitlements", "customer": customer["id"], "plan": "free",
                     "paid": False, "features": [], "seats": 1, "free_daily_credits": 100,
                     "paid_through": None, "subscription": None}
    # Content and settings are kept: the customer, its history and its credits are all there.
    assert (await api.get(f"/v1/customers/{customer['id']}", headers=org.member)).status_code \
        == 200
    events = (await api.get(f"/v1/subscriptions/{sub['id']}/events", headers=org.member)).json()
    assert events["data"][-1]["type"] == "customer.subscription.deleted"
    credits = await api.get(f"/v1/customers/{customer['id']}/credits", headers=org.member)
    assert credits.status_code == 200

    again = await create_subscription(api, org, customer["id"], plan="pro-monthly")
    back = (await api.get(url, headers=org.member)).json()
    assert back["paid"] is True and back["subscription"] == again["id"]
