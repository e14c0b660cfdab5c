"""Invoice fixtures: the payments service on localstripe (as tests/payments), and customers
that belong to an organization (invoices are numbered per organization)."""

from __future__ import annotations

import uuid

import pytest

from accounts import keys
from accounts.customers import create_customer
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.fakes_stripe import localstripe_url  # noqa: F401 - the fixture, for this directory


@pytest.fixture
def engine(db_url):
    return get_engine(db_url)


@pytest.fixture
def service(engine, localstripe_url) -> PaymentService:  # noqa: F811
    return PaymentService(engine, StripeGateway(stripe_settings(localstripe_url)))


@pytest.fixture
def organization(engine) -> str:
    org, _ = keys.create_organization_with_owner(engine, "Acme")
    return org.id


@pytest.fixture
def new_customer(engine, service, organization):
    """``new_customer(card, org)`` -> a customer of the organization, with a Stripe customer."""

    def make(card: str | None = CARD_OK, org: str | None = None) -> str:
        customer_id = f"cus_{uuid.uuid4().hex[:12]}"
        create_customer(engine, org or organization, f"{customer_id}@example.com", "Ada",
                        customer_id)
        service.create_customer(customer_id, email=f"{customer_id}@example.com", name="Ada")
        if card:
            service.add_test_card(customer_id, card)
        return customer_id

    return make
