"""Issue 5's cancel body {mode, cancel_at, reason}: `reason` is recorded as the customer's
feedback (Stripe's cancellation_details.feedback); a conflicting pair is a 422 naming
`reason`, an unknown value a 422 naming `reason`, and neither changes anything."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_problem, create_customer, create_subscription, dt, iso

pytestmark = pytest.mark.temporal


async def test_cancel_at_date_with_a_reason(api, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    path = f"/v1/subscriptions/{sub['id']}/cancel"
    at = iso(dt(sub["current_period_end"]))
    for body in ({"mode": "at_date", "cancel_at": at, "reason": "unused",
                  "feedback": "too_expensive"},
                 {"mode": "at_date", "cancel_at": at, "reason": "bored"}):
        r = await api.post(path, json=body, headers=org.owner)
        assert assert_problem(r, 422)["errors"][0]["field"] == "reason"
    r = await api.get(f"/v1/subscriptions/{sub['id']}", headers=org.member)
    assert r.json()["status"] == "active"

    r = await api.post(path, json={"mode": "at_date", "cancel_at": at, "reason": "unused",
                                   "comment": "we moved"}, headers=org.owner)
    assert r.status_code == 200, r.text
    details = r.json()["cancellation_details"]
    assert (details["mode"], details["feedback"], details["comment"]) == (
        "at_date", "unused", "we moved")
    assert details["reason"] == "cancellation_requested"
    assert r.json()["status"] == "non_renewing" and dt(r.json()["cancel_at"]) == dt(at)
