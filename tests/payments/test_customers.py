"""Our customer -> Stripe customer and default payment method (what the HTTP API calls)."""

from __future__ import annotations

import pytest

from payments import store
from payments.errors import NonRetryableGatewayError, PaymentRequestError
from payments.records import CardOnFile
from store.engine import get_engine
from tests.fakes_stripe import CARD_OK


@pytest.fixture
def engine(sqlite_url):
    """The database does not matter here (charges are covered on both in test_charge)."""
    return get_engine(sqlite_url)


def test_create_customer_once_and_set_the_default_payment_method(service, gateway):
    created = service.create_customer("cust_a", email="a@example.com", name="Ada")
    assert created.stripe_customer_id.startswith("cus_") and created.default_payment_method is None
    assert service.create_customer("cust_a") == created  # no second Stripe customer
    pm = gateway.create_card_payment_method(CARD_OK)
    updated = service.set_default_payment_method("cust_a", pm)
    assert updated.default_payment_method == pm
    assert service.get_customer("cust_a").default_payment_method == pm
    stripe_customer = gateway.client.v1.customers.retrieve(created.stripe_customer_id)
    assert stripe_customer.invoice_settings.default_payment_method == pm


def test_create_customer_with_a_payment_method(service, gateway):
    pm = gateway.create_card_payment_method(CARD_OK)
    created = service.create_customer("cust_b", email="b@example.com", payment_method_id=pm)
    assert created.default_payment_method == pm


def test_errors(service):
    assert service.get_customer("nobody") is None
    with pytest.raises(PaymentRequestError):
        service.set_default_payment_method("nobody", "pm_x")
    service.create_customer("cust_c")
    with pytest.raises(NonRetryableGatewayError):  # localstripe: 404 for an unknown method
        service.set_default_payment_method("cust_c", "pm_does_not_exist")


def test_the_card_on_file_by_brand_and_last_four_one_lookup_per_card(service, gateway, engine):
    service.create_customer("cust_card", email="c@example.com")
    assert service.card_on_file("cust_card") is None  # no payment method: nothing to look up
    pm = service.add_test_card("cust_card", "4000000000000341").default_payment_method
    assert service.card_on_file("cust_card") == CardOnFile(payment_method=pm, brand="visa",
                                                           last4="0341")
    assert service.card_on_file("cust_card").last4 == "0341"
    assert gateway.card_lookups == 1  # a card never changes: the second view asks no one

    store.set_default_payment_method(engine, "cust_card", "pm_unknown_to_stripe")
    for _ in range(2):  # Stripe says 404: the id, and no second lookup for a while
        assert service.card_on_file("cust_card") == CardOnFile(
            payment_method="pm_unknown_to_stripe")
    assert gateway.card_lookups == 2
