"""/v1/invoices on the real worker and localstripe (time-skipping server): every charge has
its invoice, numbered 1, 2, 3 ... in the organization, and what the invoices say was paid is
what localstripe's succeeded PaymentIntents took; an immediate cancellation voids the open
invoice of a declined renewal (D6)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader

from payments.gateway import StripeGateway
from tests.api.helpers import (assert_problem, create_customer, create_subscription,
                               declining_subscription, get_subscription, settle,
                               sleep_past_period_end)

pytestmark = pytest.mark.temporal


async def _invoices(api, org, **params) -> dict:
    r = await api.get("/v1/invoices", params=params, headers=org.member)
    assert r.status_code == 200, r.text
    return r.json()


async def _renewed(api, env, org, sub_id: str, periods: int) -> dict:
    """Sleep through ``periods`` renewals, one at a time (one running subscription)."""
    for _ in range(periods):
        sub = await get_subscription(api, org, sub_id)
        index = sub["current_period_start"]
        await sleep_past_period_end(env, sub, timedelta(seconds=1))

        async def moved(start=index):
            current = await get_subscription(api, org, sub_id)
            return current if current["current_period_start"] != start and \
                current["status"] == "active" else None

        await settle(moved)
    return await get_subscription(api, org, sub_id)


def _succeeded_intents(settings, stripe_customer: str) -> list[dict]:
    v1 = StripeGateway(settings.stripe).client.v1
    page = v1.payment_intents.list({"limit": 100})
    return [pi.to_dict() for pi in page.auto_paging_iter()
            if pi.to_dict().get("customer") == stripe_customer and pi.status == "succeeded"]


async def test_invoice_totals_equal_the_succeeded_payment_intents(api, env, org, other_org,
                                                                  settings):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    await _renewed(api, env, org, sub["id"], periods=2)
    r = await api.post(f"/v1/customers/{customer['id']}/credits/topups",
                       json={"amount": 1000, "idempotency_key": "t1"}, headers=org.owner)
    assert r.status_code == 200, r.text

    async def four():
        page = await _invoices(api, org, customer=customer["id"])
        return page if len(page["data"]) == 4 and all(
            i["status"] == "paid" for i in page["data"]) else None

    listed = (await settle(four))["data"]
    assert [i["number"] for i in listed] == ["INV-000004", "INV-000003", "INV-000002",
                                             "INV-000001"]  # newest first
    assert [i["kind"] for i in listed] == ["topup", "renewal", "renewal", "first_period"]
    assert {i["subscription"] for i in listed[1:]} == {sub["id"]} and listed[0][
        "subscription"] is None
    periods = [i["lines"][0]["period_start"] for i in listed[1:]]
    assert len(set(periods)) == 3 and all(i["lines"][0]["plan"] == "pro-monthly"
                                          for i in listed[1:])

    from payments.store import get_customer as stripe_customer_of
    from store.engine import get_engine
    stripe_id = stripe_customer_of(get_engine(settings.database_url),
                                   customer["id"]).stripe_customer_id
    intents = _succeeded_intents(settings, stripe_id)
    assert sum(i["amount_paid"] for i in listed) == sum(pi["amount"] for pi in intents)
    assert {i["payment_intent"] for i in listed} == {pi["id"] for pi in intents}

    # Filters, pagination, one invoice, its PDF; another organization sees nothing.
    assert len((await _invoices(api, org, subscription=sub["id"]))["data"]) == 3
    assert (await _invoices(api, org, status="open"))["data"] == []
    first_page = await _invoices(api, org, limit=3)
    assert first_page["has_more"] is True
    rest = await _invoices(api, org, limit=3, starting_after=first_page["data"][-1]["id"])
    assert [i["id"] for i in rest["data"]] == [listed[3]["id"]] and rest["has_more"] is False
    r = await api.get(f"/v1/invoices/{listed[1]['id']}", headers=org.member)
    assert r.status_code == 200 and r.json() == listed[1]
    r = await api.get(listed[1]["pdf"], headers=org.member)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert "Receipt INV-000003" in text and "Total 20.00 USD" in text
    assert_problem(await api.get(f"/v1/invoices/{listed[1]['id']}", headers=other_org.member),
                   404, code="invoice_not_found")
    assert_problem(await api.get(f"/v1/invoices/{listed[1]['id']}/pdf",
                                 headers=other_org.owner), 404)
    assert (await _invoices(api, other_org))["data"] == []
    assert_problem(await api.get("/v1/invoices", params={"status": "draft"},
                                 headers=org.member), 422)


async def test_immediate_cancellation_voids_the_open_invoice(api, env, org):
    """D6: a renewal declined (past_due, its invoice open) then cancelled immediately: the
    invoice is void, the first period's stays paid."""
    _, sub = await declining_subscription(api, org)
    await sleep_past_period_end(env, sub, timedelta(seconds=1))

    async def past_due():
        current = await get_subscription(api, org, sub["id"])
        return current if current["status"] == "past_due" else None

    await settle(past_due)
    opened = (await _invoices(api, org, status="open"))["data"]
    assert [(i["kind"], i["amount_due"]) for i in opened] == [("renewal", 2000)]
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert r.status_code == 200, r.text

    async def voided():
        page = await _invoices(api, org, subscription=sub["id"])
        return page if page["data"][0]["status"] == "void" else None

    listed = (await settle(voided))["data"]
    assert [(i["number"], i["status"]) for i in listed] == [("INV-000002", "void"),
                                                           ("INV-000001", "paid")]
    assert listed[0]["closed_at"] is not None and listed[0]["amount_due"] == 0
