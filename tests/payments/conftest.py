"""Payments fixtures: a real localstripe process (tests.fakes_stripe), the service on each
database, and gateways that record or sabotage calls (real subclasses, real HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.fakes_stripe import CARD_OK, stripe_settings
from tests.payments.fault_server import FaultServer


class RecordingGateway(StripeGateway):
    """Remembers every intent and refund it created, so tests can count on the Stripe side."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.created_intents: list[str] = []
        self.confirms = 0
        self.refunds_created: list[str] = []
        self.card_lookups = 0

    def card_of(self, *args, **kwargs):
        self.card_lookups += 1
        return super().card_of(*args, **kwargs)

    def create_payment_intent(self, *args, **kwargs):
        intent = super().create_payment_intent(*args, **kwargs)
        self.created_intents.append(intent.id)
        return intent

    def confirm_payment_intent(self, *args, **kwargs):
        self.confirms += 1
        return super().confirm_payment_intent(*args, **kwargs)

    def create_refund(self, *args, **kwargs):
        refund = super().create_refund(*args, **kwargs)
        self.refunds_created.append(refund.id)
        return refund

    def charges_of(self, stripe_customer_id: str, status: str = "succeeded") -> list:
        """Charges on the Stripe side (independent of our database)."""
        charges = self.client.v1.charges.list(params={"customer": stripe_customer_id,
                                                      "limit": 100})
        return [c for c in charges.data if c.status == status]


class Crash(Exception):
    """Stands for the process dying (or the response being lost) right after a Stripe call."""


class CrashingGateway(RecordingGateway):
    """Raises *after* the named Stripe call went through, once per name in ``crash_after``."""

    def __init__(self, *args, crash_after: set[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.crash_after = set(crash_after)

    def _maybe_crash(self, name: str) -> None:
        if name in self.crash_after:
            self.crash_after.discard(name)
            raise Crash(name)

    def create_payment_intent(self, *args, **kwargs):
        intent = super().create_payment_intent(*args, **kwargs)
        self._maybe_crash("create")
        return intent

    def confirm_payment_intent(self, *args, **kwargs):
        self._maybe_crash("before_confirm")
        intent = super().confirm_payment_intent(*args, **kwargs)
        self._maybe_crash("confirm")
        return intent

    def create_refund(self, *args, **kwargs):
        refund = super().create_refund(*args, **kwargs)
        self._maybe_crash("refund")
        return refund


@pytest.fixture
def stripe_cfg(localstripe_url):
    return stripe_settings(localstripe_url)


@pytest.fixture
def gateway(stripe_cfg) -> RecordingGateway:
    return RecordingGateway(stripe_cfg)


@pytest.fixture
def engine(db_url):
    return get_engine(db_url)


@pytest.fixture
def service(engine, gateway) -> PaymentService:
    return PaymentService(engine, gateway)


@pytest.fixture
def new_customer(service):
    """``new_customer(card)`` -> our customer id, with a Stripe customer and default card."""

    def make(card: str | None = CARD_OK) -> str:
        customer_id = f"cust_{uuid.uuid4().hex[:10]}"
        service.create_customer(customer_id, email=f"{customer_id}@example.com", name="Ada")
        if card:
            service.add_test_card(customer_id, card)
        return customer_id

    return make


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server
