"""The subscription lifecycle through HTTP, against the real worker on the time-skipping server:
create, cancel at period end (D2), reactivate (D3), postpone (D5), the end (D4), refusals with
the core's reasons, validation naming the field, idempotent retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.lifecycle import ENDED_MESSAGE
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_subscription,
    dt,
    get_subscription,
    iso,
    renewal_date,
    settle,
)
from tests.fakes_stripe import CARD_DECLINED

pytestmark = pytest.mark.temporal


async def test_cancel_at_period_end_keeps_the_date_then_reactivate(api, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    assert sub["status"] == "active" and sub["has_access"] is True
    assert sub["object"] == "subscription" and sub["id"].startswith("sub_")
    assert sub["customer"] == customer["id"] and sub["organization"] == org.id
    end = dt(sub["current_period_end"])
    assert sub["renewal"]["line"].startswith("Renewing on ") and renewal_date(sub) == end

    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel",
                       json={"mode": "at_period_end", "feedback": "too_expensive"},
                       headers=org.billing_admin)
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "non_renewing" and cancelled["cancel_at_period_end"] is True
    assert cancelled["has_access"] is True  # D2: access until the paid-through date
    assert cancelled["renewal"]["line"].startswith("Cancelling on ")
    assert renewal_date(cancelled) == end == dt(cancelled["cancel_at"])
    assert cancelled["cancellation_details"]["feedback"] == "too_expensive"
    assert cancelled["cancellation_details"]["requested_by"]["kind"] == "api_key"
    assert await get_subscription(api, org, sub["id"]) == cancelled

    r = await api.post(f"/v1/subscriptions/{sub['id']}/reactivate", headers=org.owner)
    assert r.status_code == 200, r.text
    back = r.json()
    assert back["status"] == "active" and back["cancel_at"] is None
    assert back["renewal"]["line"].startswith("Renewing on ") and renewal_date(back) == end

    r = await api.post(f"/v1/subscriptions/{sub['id']}/reactivate", headers=org.owner)
    assert_problem(r, 409, code="nothing_to_reactivate")


async def test_postpone_then_the_end_then_reactivation_is_refused(api, env, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    end = dt(sub["current_period_end"])
    r = await api.post(f"/v1/subscriptions/{sub['id']}/postpone",
                       json={"cancel_at": iso(end + timedelta(days=3))}, headers=org.owner)
    assert_problem(r, 409, code="nothing_to_postpone")

    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "at_period_end"},
                       headers=org.owner)
    assert r.status_code == 200, r.text
    later = end + timedelta(days=3)
    r = await api.post(f"/v1/subscriptions/{sub['id']}/postpone",
                       json={"cancel_at": iso(later)}, headers=org.owner)
    assert r.status_code == 200, r.text
    postponed = r.json()
    assert postponed["status"] == "non_renewing" and dt(postponed["cancel_at"]) == later
    assert renewal_date(postponed) == later

    await env.sleep(later - await env.get_current_time() + timedelta(minutes=1))

    async def ended():
        current = await get_subscription(api, org, sub["id"])
        return current if current["status"] == "canceled" else None

    final = await settle(ended)
    assert dt(final["ended_at"]) == later and final["has_access"] is False
    assert final["renewal"] == {"line": None, "date": None}

    r = await api.post(f"/v1/subscriptions/{sub['id']}/reactivate", headers=org.owner)
    body = assert_problem(r, 409, code="subscription_ended")
    assert body["detail"] == ENDED_MESSAGE == ("ended subscriptions cannot be reactivated; "
                                               "create a new subscription")
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert_problem(r, 409, code="subscription_ended")

    r = await api.get(f"/v1/subscriptions/{sub['id']}/events", headers=org.member)
    assert r.status_code == 200, r.text
    types = [e["type"] for e in r.json()["data"]]
    assert types[0] == "customer.subscription.created"
    assert types[-1] == "customer.subscription.deleted"
    deleted = r.json()["data"][-1]
    assert deleted["request"] is None  # automatic: the scheduled end took effect (D8)
    assert deleted["data"]["object"]["status"] == "canceled"
    events = f"/v1/subscriptions/{sub['id']}/events"
    page = (await api.get(events, params={"limit": 2}, headers=org.member)).json()
    assert page["has_more"] is True and len(page["data"]) == 2
    rest = (await api.get(events, params={"starting_after": page["data"][1]["id"]},
                          headers=org.member)).json()
    assert [e["type"] for e in page["data"] + rest["data"]] == types
    r = await api.get(events, params={"starting_after": "evt_other_000001"}, headers=org.member)
    assert assert_problem(r, 422)["errors"][0]["field"] == "starting_after"

    r = await api.get("/v1/subscriptions", params={"status": "canceled"}, headers=org.member)
    assert [s["id"] for s in r.json()["data"]] == [sub["id"]]


async def test_bad_input_is_422_naming_the_field_and_changes_nothing(api, env, org):
    customer = await create_customer(api, org)
    r = await api.post("/v1/subscriptions", json={"customer": customer["id"], "plan": "gold"},
                       headers=org.owner)
    body = assert_problem(r, 422, code="unknown_plan")
    assert body["errors"][0]["field"] == "plan" and "pro-monthly" in body["detail"]
    now = await env.get_current_time()
    r = await api.post("/v1/subscriptions", json={
        "customer": customer["id"], "plan": "pro-monthly",
        "trial_end": iso(now - timedelta(days=1))}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "trial_end"
    r = await api.post("/v1/subscriptions", json={"customer": "cus_nope", "plan": "pro-monthly"},
                       headers=org.owner)
    assert_problem(r, 404, code="customer_not_found")
    r = await api.post("/v1/subscriptions", json={"plan": "pro-monthly"}, headers=org.owner)
    assert assert_problem(r, 422)["errors"] == [
        {"field": "customer", "rule": "missing", "message": "Field required"}]

    sub = await create_subscription(api, org, customer["id"])
    path = f"/v1/subscriptions/{sub['id']}/cancel"
    cases = [
        ({"mode": "at_date", "cancel_at": iso(now - timedelta(days=1))}, "cancel_at",
         "cancel_at_not_in_future"),
        ({"mode": "at_date"}, "cancel_at", "cancel_at_required"),
        ({"mode": "at_period_end", "cancel_at": iso(now + timedelta(days=1))}, "cancel_at",
         "cancel_at_not_allowed"),
        ({"mode": "at_date", "cancel_at": "2030-01-01T00:00:00"}, "cancel_at",
         "timezone_aware"),
        ({"mode": "tomorrow"}, "mode", "literal_error"),
        ({"mode": "immediately", "refund": "double"}, "refund", "literal_error"),
        ({"mode": "immediately", "surprise": 1}, "surprise", "extra_forbidden"),
    ]
    for body, field, rule in cases:
        r = await api.post(path, json=body, headers=org.owner)
        problem = assert_problem(r, 422)
        assert [(e["field"], e["rule"]) for e in problem["errors"]] == [(field, rule)], problem
    r = await api.post(path, content=b"{not json", headers={**org.owner,
                                                           "content-type": "application/json"})
    assert assert_problem(r, 422)["errors"][0]["field"] == "body"
    r = await api.post(f"/v1/subscriptions/{sub['id']}/postpone",
                       json={"cancel_at": iso(now + timedelta(days=400))}, headers=org.owner)
    assert_problem(r, 409, code="nothing_to_postpone")
    r = await api.get("/v1/subscriptions", params={"limit": 0}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "limit"
    r = await api.get("/v1/subscriptions", params={"status": "sleeping"}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "status"

    after = await get_subscription(api, org, sub["id"])
    assert after["status"] == "active" and after["cancel_at"] is None
    events = (await api.get(f"/v1/subscriptions/{sub['id']}/events",
                            headers=org.owner)).json()["data"]
    assert [e["type"] for e in events if e["type"].startswith("customer.")] == [
        "customer.subscription.created", "customer.subscription.updated"]  # created -> active


async def test_members_read_but_only_owners_and_billing_admins_cancel(api, org, operator):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    for action, body in (("cancel", {"mode": "immediately"}), ("reactivate", None),
                         ("postpone", {"cancel_at": "2099-01-01T00:00:00Z"})):
        r = await api.post(f"/v1/subscriptions/{sub['id']}/{action}", json=body,
                           headers=org.member)
        assert_problem(r, 403, code="role_not_allowed")
        assert r.json()["detail"].startswith("only organization owners and billing admins may")
    assert (await get_subscription(api, org, sub["id"]))["status"] == "active"
    r = await api.get(f"/v1/subscriptions/{sub['id']}/cancellation_preview", headers=org.member)
    assert r.status_code == 200, r.text

    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "immediately"},
                       headers=operator)
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["status"] == "canceled"
    assert cancelled["cancellation_details"]["requested_by"]["kind"] == "operator"


async def test_other_organizations_see_nothing(api, org, other_org, operator):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    sid = sub["id"]
    for method, path, body in (
        ("GET", f"/v1/subscriptions/{sid}", None),
        ("GET", f"/v1/subscriptions/{sid}/events", None),
        ("GET", f"/v1/subscriptions/{sid}/cancellation_preview", None),
        ("POST", f"/v1/subscriptions/{sid}/cancel", {"mode": "immediately"}),
        ("POST", f"/v1/subscriptions/{sid}/reactivate", None),
        ("GET", f"/v1/customers/{customer['id']}", None),
        ("GET", f"/v1/customers/{customer['id']}/credits", None),
        ("POST", f"/v1/customers/{customer['id']}/credits/usage",
         {"amount": 1, "idempotency_key": "k1"}),
        ("POST", "/v1/subscriptions", {"customer": customer["id"], "plan": "pro-monthly"}),
        ("DELETE", f"/v1/organizations/{org.id}", None),
    ):
        r = await api.request(method, path, json=body, headers=other_org.owner)
        assert_problem(r, 404)
    r = await api.get("/v1/subscriptions", headers=other_org.owner)
    assert r.json()["data"] == []
    r = await api.get("/v1/subscriptions", params={"organization": org.id},
                      headers=other_org.owner)
    assert_problem(r, 404)

    # Operators name the organization and see it.
    r = await api.get("/v1/subscriptions", headers=operator)
    assert assert_problem(r, 422)["errors"][0]["field"] == "organization"
    r = await api.get("/v1/subscriptions", params={"organization": org.id}, headers=operator)
    assert [s["id"] for s in r.json()["data"]] == [sid]
    assert (await get_subscription(api, org, sid))["status"] == "active"


async def test_idempotency_key_makes_a_retried_call_harmless(api, org):
    customer = await create_customer(api, org)
    headers = {**org.owner, "Idempotency-Key": "create-1"}
    body = {"customer": customer["id"], "plan": "pro-monthly"}
    first = await api.post("/v1/subscriptions", json=body, headers=headers)
    again = await api.post("/v1/subscriptions", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    sid = first.json()["id"]
    assert again.json()["id"] == sid
    r = await api.post("/v1/subscriptions", json={**body, "plan": "pro-yearly"}, headers=headers)
    assert_problem(r, 409, code="idempotency_key_reused")

    headers = {**org.owner, "Idempotency-Key": "cancel-1"}
    one = await api.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "at_period_end"},
                         headers=headers)
    two = await api.post(f"/v1/subscriptions/{sid}/cancel", json={"mode": "at_period_end"},
                         headers=headers)
    assert one.status_code == two.status_code == 200, two.text
    assert one.json() == two.json()
    events = (await api.get(f"/v1/subscriptions/{sid}/events", headers=org.owner)).json()
    updates = [e for e in events["data"] if e["type"] == "customer.subscription.updated"
               and "cancel_at" in e["data"]["previous_attributes"]]
    assert len(updates) == 1

    listed = (await api.get("/v1/subscriptions", headers=org.owner)).json()["data"]
    assert [s["id"] for s in listed] == [sid]


async def test_list_filters_and_pages(api, org):
    alice = await create_customer(api, org, email="alice@example.com")
    bob = await create_customer(api, org, email="bob@example.com")
    a = await create_subscription(api, org, alice["id"], plan="pro-monthly")
    b = await create_subscription(api, org, bob["id"], plan="pro-yearly")

    async def listed(**params):
        r = await api.get("/v1/subscriptions", params=params, headers=org.member)
        assert r.status_code == 200, r.text
        return r.json()

    everything = await settle(lambda: _two(listed))
    assert {s["id"] for s in everything["data"]} == {a["id"], b["id"]}
    assert everything["object"] == "list" and everything["has_more"] is False
    item = next(s for s in everything["data"] if s["id"] == a["id"])
    assert item["status"] == "active" and item["has_access"] is True
    assert renewal_date(item) == dt(a["current_period_end"])
    assert [s["id"] for s in (await listed(customer=bob["id"]))["data"]] == [b["id"]]
    assert [s["id"] for s in (await listed(plan="pro-monthly"))["data"]] == [a["id"]]
    assert (await listed(status="non_renewing"))["data"] == []
    first = await listed(limit=1)
    assert first["has_more"] is True and len(first["data"]) == 1
    rest = await listed(limit=1, starting_after=first["data"][0]["id"])
    assert rest["has_more"] is False
    assert {first["data"][0]["id"], rest["data"][0]["id"]} == {a["id"], b["id"]}


async def _two(listed):
    page = await listed()
    return page if len(page["data"]) == 2 else None


async def test_cancellation_preview_shows_what_is_affected(api, env, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    await settle(lambda: _has_credits(api, org, customer["id"]))
    r = await api.get(f"/v1/subscriptions/{sub['id']}/cancellation_preview", headers=org.member)
    assert r.status_code == 200, r.text
    preview = r.json()
    end = dt(sub["current_period_end"])
    at_end = preview["at_period_end"]
    assert at_end["allowed"] is True
    assert dt(at_end["ends_at"]) == dt(at_end["has_access_until"]) == end
    assert at_end["renewal_line"] == f"Cancelling on {end.isoformat()}"
    now = preview["immediately"]
    assert now["allowed"] is True and 0 < now["prorated_refund"] <= 2000
    assert preview["credits"]["subscription_credits_forfeited"] == 5000  # pro-monthly grant
    assert preview["credits"]["outstanding_usage"] == 0
    assert preview["open_charges"] == {"pending_items": 0, "pending_amount": 0,
                                       "open_attempts": 0, "open_amount": 0}
    assert preview["default_payment_method"] == customer["default_payment_method"]
    # Nothing was changed by previewing.
    assert (await get_subscription(api, org, sub["id"]))["status"] == "active"


async def _has_credits(api, org, customer_id):
    r = await api.get(f"/v1/customers/{customer_id}/credits", headers=org.member)
    return r.json()["balances"]["subscription"] > 0


async def test_new_payment_method_retries_a_declined_payment(api, org):
    customer = await create_customer(api, org, card=CARD_DECLINED)
    sub = await create_subscription(api, org, customer["id"])
    assert sub["status"] == "incomplete" and sub["has_access"] is False
    r = await api.post(f"/v1/customers/{customer['id']}/payment_method",
                       json={"card_number": "4242424242424242"}, headers=org.billing_admin)
    assert r.status_code == 200, r.text
    assert r.json()["retried_subscriptions"] == [sub["id"]]

    async def active():
        current = await get_subscription(api, org, sub["id"])
        return current if current["status"] == "active" else None

    assert (await settle(active))["has_access"] is True


async def test_failed_renewal_keeps_access_in_grace_until_a_new_card_pays(api, env, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    path = f"/v1/customers/{customer['id']}/payment_method"
    r = await api.post(path, json={"card_number": CARD_DECLINED}, headers=org.owner)
    assert r.status_code == 200 and r.json()["retried_subscriptions"] == []

    end = dt(sub["current_period_end"])
    await env.sleep(end - await env.get_current_time() + timedelta(hours=1))

    async def past_due():
        current = await get_subscription(api, org, sub["id"])
        return current if current["status"] == "past_due" else None

    failing = await settle(past_due)
    assert failing["has_access"] is True  # D9: the grace period
    assert dt(failing["current_period_start"]) == end
    listed = (await api.get("/v1/subscriptions", params={"status": "past_due"},
                            headers=org.member)).json()["data"]
    assert [(s["id"], s["has_access"]) for s in listed] == [(sub["id"], True)]
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "at_period_end"},
                       headers=org.owner)
    assert_problem(r, 409, code="unpaid_period")
    preview = (await api.get(f"/v1/subscriptions/{sub['id']}/cancellation_preview",
                             headers=org.member)).json()
    assert preview["at_period_end"]["allowed"] is False
    assert "unpaid period" in preview["at_period_end"]["refused_reason"]
    assert preview["immediately"]["allowed"] is True

    r = await api.post(path, json={"card_number": "4242424242424242"}, headers=org.owner)
    assert r.status_code == 200 and r.json()["retried_subscriptions"] == [sub["id"]]
    paid = await get_subscription(api, org, sub["id"])
    assert paid["status"] == "active" and dt(paid["current_period_start"]) == end


async def test_resubscribing_after_the_end_can_keep_the_old_anchor(api, org):
    customer = await create_customer(api, org)
    credits = f"/v1/customers/{customer['id']}/credits"
    old = await create_subscription(api, org, customer["id"])
    r = await api.post(f"{credits}/topups", json={"amount": 500, "idempotency_key": "t1"},
                       headers=org.owner)
    assert r.status_code == 200, r.text
    r = await api.post(f"/v1/subscriptions/{old['id']}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert r.json()["status"] == "canceled"

    async def balances_when(predicate):
        body = (await api.get(credits, headers=org.member)).json()
        return body if predicate(body) else None

    # D16: the term ended: purchased credits are locked for new work
    await settle(lambda: balances_when(lambda b: b["locked"] == 500))
    r = await api.post(f"/v1/subscriptions/{old['id']}/reactivate", headers=org.owner)
    assert_problem(r, 409, code="subscription_ended", detail=ENDED_MESSAGE)

    # D4: a new subscription; trial_end at the old renewal date keeps the billing anchor.
    new = await create_subscription(api, org, customer["id"],
                                    trial_end=old["current_period_end"])
    assert new["id"] != old["id"] and new["status"] == "trialing"
    assert dt(new["current_period_end"]) == dt(old["current_period_end"])
    assert new["renewal"]["line"].startswith("Trial ends on ")
    assert renewal_date(new) == dt(old["current_period_end"])
    # ...and the resubscription unlocks them (D16)
    after = await settle(lambda: balances_when(lambda b: b["locked"] == 0))
    assert after["balances"]["purchased"] == 500
