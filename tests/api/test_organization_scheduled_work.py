"""D22 for work still to come: a subscription that starts later, or whose cancellation is only
scheduled, keeps the organization from being deleted until it has really ended."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.api.helpers import assert_problem, create_customer, create_subscription, iso, settle

pytestmark = pytest.mark.temporal


async def test_scheduled_start_and_scheduled_cancel_block_deletion(api, env, org):
    customer = await create_customer(api, org)
    later = await env.get_current_time() + timedelta(days=10)
    sub = await create_subscription(api, org, customer["id"], start_date=iso(later))
    assert sub["status"] == "scheduled"
    r = await api.delete(f"/v1/organizations/{org.id}", headers=org.owner)
    body = assert_problem(r, 409, code="outstanding_obligations")
    assert body["outstanding"] == {"live_subscriptions": [sub["id"]]}

    # D10: a future subscription can only be cancelled immediately.
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "at_period_end"},
                       headers=org.owner)
    assert_problem(r, 409)
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert r.status_code == 200 and r.json()["status"] == "canceled", r.text

    async def deletable():
        r = await api.delete(f"/v1/organizations/{org.id}", headers=org.owner)
        return r if r.status_code == 200 else None

    assert (await settle(deletable)).json()["deleted"] is True


async def test_a_scheduled_cancellation_is_still_outstanding(api, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "at_period_end"},
                       headers=org.billing_admin)
    assert r.json()["status"] == "non_renewing"

    async def outstanding():
        r = await api.delete(f"/v1/organizations/{org.id}", headers=org.owner)
        body = r.json()
        return body if body.get("outstanding") == {"live_subscriptions": [sub["id"]]} else None

    body = await settle(outstanding)
    assert body["status"] == 409
    assert (await api.get(f"/v1/organizations/{org.id}", headers=org.member)).status_code == 200
