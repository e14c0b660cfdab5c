"""Customers through HTTP: our record plus the Stripe customer (localstripe) with its default
payment method; validation names the field; tenancy hides other organizations' customers."""

from __future__ import annotations

import pytest

from tests.api.helpers import assert_problem, create_customer

pytestmark = pytest.mark.temporal


async def test_create_and_read_a_customer(http, org, other_org, operator):
    created = await create_customer(http, org)
    assert created["id"].startswith("cus_") and created["object"] == "customer"
    assert created["organization"] == org.id and created["email"] == "ada@example.com"
    assert created["default_payment_method"].startswith("pm_")
    r = await http.get(f"/v1/customers/{created['id']}", headers=org.member)
    assert r.status_code == 200 and r.json() == created
    assert_problem(await http.get(f"/v1/customers/{created['id']}", headers=other_org.owner), 404)
    assert (await http.get(f"/v1/customers/{created['id']}", headers=operator)).status_code == 200

    without_card = await create_customer(http, org, card=None, email="bob@example.com")
    assert without_card["default_payment_method"] is None
    r = await http.post(f"/v1/customers/{without_card['id']}/payment_method",
                       json={"card_number": "4242424242424242"}, headers=org.owner)
    assert r.status_code == 200, r.text
    assert r.json()["customer"]["default_payment_method"].startswith("pm_")
    assert r.json()["retried_subscriptions"] == []


async def test_customer_validation_and_operator_scope(http, org, operator):
    for body, field in (({"name": "Ada"}, "email"),
                        ({"email": "not-an-email", "name": "Ada"}, "email"),
                        ({"email": "a@example.com", "name": ""}, "name"),
                        ({"email": "a@example.com", "name": "Ada", "payment_method": "visa"},
                         "payment_method")):
        r = await http.post("/v1/customers", json=body, headers=org.owner)
        assert assert_problem(r, 422)["errors"][0]["field"] == field
    r = await http.post("/v1/customers", json={"email": "a@example.com", "name": "Ada"},
                       headers=operator)
    assert assert_problem(r, 422)["errors"][0]["field"] == "organization"
    r = await http.post("/v1/customers", json={"email": "a@example.com", "name": "Ada",
                                              "organization": org.id}, headers=operator)
    assert r.status_code == 201 and r.json()["organization"] == org.id

    customer = await create_customer(http, org)
    path = f"/v1/customers/{customer['id']}/payment_method"
    for body in ({}, {"card_number": "4242424242424242", "payment_method_id": "pm_card_visa"}):
        r = await http.post(path, json=body, headers=org.owner)
        assert assert_problem(r, 422)["errors"][0]["field"] == "card_number"
    r = await http.post(path, json={"card_number": "4242"}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "card_number"
