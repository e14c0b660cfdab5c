"""POST /v1/subscriptions/{id}/payment_method: the new card becomes the customer's default and
the declined payment is retried at once (D9); other organizations get 404, bad input 422
naming the field, an ended subscription 409."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_problem, create_customer, create_subscription
from tests.fakes_stripe import CARD_DECLINED, CARD_OK

pytestmark = pytest.mark.temporal


async def test_a_new_card_pays_the_declined_subscription(api, org, other_org):
    customer = await create_customer(api, org, card=CARD_DECLINED)
    sub = await create_subscription(api, org, customer["id"])
    assert sub["status"] == "incomplete"
    path = f"/v1/subscriptions/{sub['id']}/payment_method"

    assert_problem(await api.post(path, json={"card_number": CARD_OK},
                                  headers=other_org.owner), 404)
    r = await api.post(path, json={"card_number": CARD_OK}, headers=org.member)
    assert_problem(r, 403, code="role_not_allowed")  # D21: members read, managers pay
    for body in ({}, {"card_number": CARD_OK, "payment_method_id": "pm_x"},
                 {"card_number": "12"}):
        r = await api.post(path, json=body, headers=org.billing_admin)
        assert assert_problem(r, 422)["errors"][0]["field"] == "card_number"
    assert (await api.get(f"/v1/subscriptions/{sub['id']}",
                          headers=org.member)).json()["status"] == "incomplete"

    r = await api.post(path, json={"card_number": CARD_OK}, headers=org.billing_admin)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["retried_subscriptions"] == [sub["id"]]
    assert result["subscription"]["status"] == "active"
    assert result["subscription"]["has_access"] is True
    assert result["default_payment_method"].startswith("pm_")
    got = (await api.get(f"/v1/customers/{customer['id']}", headers=org.member)).json()
    assert got["default_payment_method"] == result["default_payment_method"]

    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "immediately"},
                       headers=org.owner)
    assert r.json()["status"] == "canceled"
    r = await api.post(path, json={"card_number": CARD_OK}, headers=org.owner)
    assert_problem(r, 409, code="subscription_ended")
