"""Pause and resume (D12) through HTTP, against the real worker on the time-skipping server:
a pause at the period end stops renewals (months pass, nothing is charged, no access, purchased
credits locked), resume with the kept anchor charges the current anchor period exactly once and
unlocks; a pause now followed by an immediate cancel; refusals and validation naming the field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.periods import boundary
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_subscription,
    dt,
    get_subscription,
    iso,
    list_events,
    settle,
)

pytestmark = pytest.mark.temporal


async def _types(api, org, sub_id: str) -> list[str]:
    return [e["type"] for e in await list_events(api, org, sub_id)]


async def _credits(api, org, customer_id: str) -> dict:
    r = await api.get(f"/v1/customers/{customer_id}/credits", headers=org.member)
    assert r.status_code == 200, r.text
    return r.json()


async def test_pause_at_period_end_charges_nothing_then_resume_keeps_the_anchor(api, env, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    sid, anchor = sub["id"], dt(sub["billing_cycle_anchor"])
    end = dt(sub["current_period_end"])
    credits = f"/v1/customers/{customer['id']}/credits"
    r = await api.post(f"{credits}/topups", json={"amount": 1000, "idempotency_key": "t-1"},
                       headers=org.owner)
    assert r.status_code == 200, r.text

    r = await api.post(f"/v1/subscriptions/{sid}/pause", json={"mode": "at_period_end"},
                       headers=org.billing_admin)
    assert r.status_code == 200, r.text
    scheduled = r.json()
    assert scheduled["status"] == "active" and scheduled["has_access"] is True
    pause = scheduled["pause_collection"]
    assert pause["mode"] == "at_period_end" and pause["resumes_at"] is None
    assert dt(pause["paused_at"]) == end
    assert scheduled["renewal"]["line"] == f"Pausing on {end.isoformat()}"

    # Two and a half periods pass: the pause takes effect at the end, nothing is charged.
    await env.sleep(boundary(anchor, "month", 1, 3) - await env.get_current_time()
                    - timedelta(days=10))

    async def paused():
        current = await get_subscription(api, org, sid)
        types = await _types(api, org, sid)
        return current if current["status"] == "paused" and \
            "customer.subscription.paused" in types else None

    now_paused = await settle(paused)
    assert now_paused["has_access"] is False and now_paused["renewal"]["line"] is None
    assert (await _types(api, org, sid)).count("invoice.paid") == 1
    balances = await _credits(api, org, customer["id"])
    assert balances["balances"]["subscription"] == 0  # D15: forfeited at the pause
    assert balances["locked"] == 1000 and balances["balances"]["purchased"] == 0  # D16
    r = await api.post(f"/v1/subscriptions/{sid}/reactivate", headers=org.owner)
    assert "resume" in assert_problem(r, 409, code="paused")["detail"]

    r = await api.post(f"/v1/subscriptions/{sid}/resume", json={"anchor": "keep"},
                       headers=org.owner)
    assert r.status_code == 200, r.text
    resumed = r.json()
    current_start = boundary(anchor, "month", 1, 2)
    assert resumed["status"] == "active" and resumed["pause_collection"] is None
    assert dt(resumed["billing_cycle_anchor"]) == anchor
    assert dt(resumed["current_period_start"]) == current_start
    assert dt(resumed["current_period_end"]) == boundary(anchor, "month", 1, 3)
    types = await _types(api, org, sid)
    assert types.count("invoice.paid") == 2  # the resumed period, charged once
    assert types.count("customer.subscription.resumed") == 1
    balances = await settle(lambda: _unlocked(api, org, customer["id"]))
    assert balances["balances"]["subscription"] > 0  # the resumed period's credits

    # Resuming again is refused: nothing is paused any more.
    r = await api.post(f"/v1/subscriptions/{sid}/resume", headers=org.owner)
    assert_problem(r, 409, code="not_paused")
    assert (await _types(api, org, sid)).count("invoice.paid") == 2


async def _unlocked(api, org, customer_id):
    balances = await _credits(api, org, customer_id)
    return balances if balances["locked"] == 0 and \
        balances["balances"]["purchased"] == 1000 else None


async def test_pause_now_then_cancel_immediately(api, env, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    sid = sub["id"]
    now = await env.get_current_time()
    r = await api.post(f"/v1/subscriptions/{sid}/pause",
                       json={"mode": "now", "resume_at": iso(now - timedelta(days=1))},
                       headers=org.owner)
    assert assert_problem(r, 422, code="resume_at_not_in_future")["errors"][0]["field"] == \
        "resume_at"
    r = await api.post(f"/v1/subscriptions/{sid}/pause",
                       json={"mode": "now", "resume_at": "2030-01-01T00:00:00"},
                       headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "resume_at"  # naive
    r = await api.post(f"/v1/subscriptions/{sid}/pause", json={"mode": "soon"},
                       headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "mode"
    r = await api.post(f"/v1/subscriptions/{sid}/pause", json={"mode": "now"},
                       headers=org.member)
    assert_problem(r, 403)

    resume_at = now + timedelta(days=60)
    r = await api.post(f"/v1/subscriptions/{sid}/pause",
                       json={"mode": "now", "resume_at": iso(resume_at)},
                       headers=org.owner | {"Idempotency-Key": "pause-1"})
    assert r.status_code == 200, r.text
    paused = r.json()
    assert paused["status"] == "paused" and paused["has_access"] is False
    assert dt(paused["pause_collection"]["resumes_at"]) == resume_at
    assert paused["renewal"]["line"] == f"Resuming on {resume_at.isoformat()}"
    again = await api.post(f"/v1/subscriptions/{sid}/pause", json={"mode": "now"},
                           headers=org.owner | {"Idempotency-Key": "pause-1"})
    assert again.status_code == 200 and again.json() == paused  # the first outcome
    r = await api.post(f"/v1/subscriptions/{sid}/pause", json={"mode": "now"},
                       headers=org.owner)
    assert_problem(r, 409, code="already_paused")
    r = await api.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "at_period_end"},
                       headers=org.owner)
    assert_problem(r, 409, code="paused", field="mode")

    r = await api.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "immediately"},
                       headers=org.billing_admin)
    assert r.status_code == 200, r.text
    ended = r.json()
    assert ended["status"] == "canceled" and ended["pause_collection"] is None
    r = await api.post(f"/v1/subscriptions/{sid}/resume", headers=org.owner)
    assert_problem(r, 409, code="subscription_ended")

    # Past the old resume date nothing wakes up and nothing is charged.
    await env.sleep(resume_at - await env.get_current_time() + timedelta(days=1))
    events = await list_events(api, org, sid)
    types = [e["type"] for e in events]
    assert types.count("invoice.paid") == 1 and "customer.subscription.resumed" not in types
    paused_event = events[types.index("customer.subscription.paused")]
    assert paused_event["request"]["kind"] == "api_key"
    assert types[-1] == "customer.subscription.deleted"
