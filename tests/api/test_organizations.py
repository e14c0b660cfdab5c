"""D22 through HTTP: an organization is deleted only when nothing is outstanding; its keys stop
working at once. Only owners (and operators) may delete."""

from __future__ import annotations

import pytest

from ledger.service import Ledger
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.api.helpers import assert_problem, create_customer, create_subscription, settle

pytestmark = pytest.mark.temporal


async def test_deletion_is_refused_while_a_subscription_lives(api, org):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])

    for role in (org.member, org.billing_admin):
        r = await api.delete(f"/v1/organizations/{org.id}", headers=role)
        assert_problem(r, 403, code="role_not_allowed")
    r = await api.delete(f"/v1/organizations/{org.id}", headers=org.owner)
    body = assert_problem(r, 409, code="outstanding_obligations")
    assert body["outstanding"] == {"live_subscriptions": [sub["id"]]}
    assert (await api.get(f"/v1/organizations/{org.id}", headers=org.member)).status_code == 200

    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert r.status_code == 200 and r.json()["status"] == "canceled"

    async def deleted():
        r = await api.delete(f"/v1/organizations/{org.id}", headers=org.owner)
        return r if r.status_code == 200 else None

    r = await settle(deleted)  # the read model records the end a moment after the answer
    assert r.json()["deleted"] is True and r.json()["id"] == org.id

    for role in (org.owner, org.member):
        r = await api.get(f"/v1/customers/{customer['id']}", headers=role)
        assert_problem(r, 401, code="invalid_api_key")


async def test_pending_items_left_by_an_ended_subscription_block_deletion(api, org, settings):
    customer = await create_customer(api, org)
    sub = await create_subscription(api, org, customer["id"])
    payments = PaymentService(get_engine(settings.database_url), StripeGateway(settings.stripe))
    payments.add_pending_charge("seat-1", sub["id"], customer["id"], 700, "usd", "extra seat")
    preview = (await api.get(f"/v1/subscriptions/{sub['id']}/cancellation_preview",
                             headers=org.owner)).json()
    assert preview["open_charges"]["pending_items"] == 1
    assert preview["open_charges"]["pending_amount"] == 700

    # D6: an immediate cancellation leaves one-off items pending; D22: that is outstanding.
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert r.json()["status"] == "canceled"

    async def only_open_charges_left():
        r = await api.delete(f"/v1/organizations/{org.id}", headers=org.owner)
        body = r.json()
        return body if body.get("outstanding") == {
            "subscriptions_with_open_charges": [sub["id"]]} else None

    body = await settle(only_open_charges_left)
    assert body["status"] == 409 and body["code"] == "outstanding_obligations"


async def test_unsettled_usage_blocks_deletion_until_settled(api, env, org, operator,
                                                           settings):
    customer = await create_customer(api, org)
    # Metered usage reported by a job runner with no credits to pay it: it stays outstanding.
    ledger = Ledger(get_engine(settings.database_url), settings.credits)
    ledger.report_usage(customer["id"], 40, "job-1", await env.get_current_time())

    r = await api.delete(f"/v1/organizations/{org.id}", headers=operator)
    body = assert_problem(r, 409, code="outstanding_obligations")
    assert body["outstanding"] == {"customers_with_unsettled_usage": [customer["id"]]}

    # A top-up settles the debt first (D17); then nothing is outstanding.
    r = await api.post(f"/v1/customers/{customer['id']}/credits/topups",
                      json={"amount": 100, "idempotency_key": "settle-1"}, headers=org.owner)
    assert r.status_code == 200, r.text
    assert r.json()["balance"]["outstanding"] == 0
    assert r.json()["balance"]["available"] == 60
    r = await api.delete(f"/v1/organizations/{org.id}", headers=operator)
    assert r.status_code == 200, r.text
    r = await api.get(f"/v1/organizations/{org.id}", headers=operator)
    assert_problem(r, 404)
