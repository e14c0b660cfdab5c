"""Our customer id -> Stripe customer and default payment method (``stripe_customer``).

Renewals are merchant-initiated charges of the *default* payment method, so the mapping is all a
charge needs. The HTTP API creates customers and changes payment methods through these methods;
a new default payment method is what lets the workflow retry a failed renewal at once (D9).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from payments import store
from payments.errors import PaymentRequestError
from payments.gateway import StripeGateway
from payments.models import StripeCustomer
from payments.records import StripeCustomerRecord


class Customers:
    """Part of PaymentService (payments.service)."""

    engine: Engine
    gateway: StripeGateway

    def get_customer(self, customer_id: str) -> StripeCustomerRecord | None:
        row = store.get_customer(self.engine, customer_id)
        return StripeCustomerRecord.model_validate(row, from_attributes=True) if row else None

    def create_customer(self, customer_id: str, email: str | None = None,
                        name: str | None = None,
                        payment_method_id: str | None = None) -> StripeCustomerRecord:
        """The Stripe customer of our customer (created once), optionally with a default
        payment method."""
        row = store.get_customer(self.engine, customer_id)
        if row is None:
            stripe_id = self.gateway.create_customer(
                f"customer:{customer_id}", email=email, name=name,
                metadata={"customer_id": customer_id})
            row = store.insert_customer(self.engine, StripeCustomer(
                customer_id=customer_id, stripe_customer_id=stripe_id))
        if payment_method_id:
            return self.set_default_payment_method(customer_id, payment_method_id)
        return StripeCustomerRecord.model_validate(row, from_attributes=True)

    def set_default_payment_method(self, customer_id: str,
                                   payment_method_id: str) -> StripeCustomerRecord:
        """Attach and make default (D9: the workflow then retries a failed renewal at once)."""
        row = store.get_customer(self.engine, customer_id)
        if row is None:
            raise PaymentRequestError(f"customer {customer_id} has no Stripe customer")
        self.gateway.attach_payment_method(row.stripe_customer_id, payment_method_id)
        row = store.set_default_payment_method(self.engine, customer_id, payment_method_id)
        return StripeCustomerRecord.model_validate(row, from_attributes=True)

    def add_test_card(self, customer_id: str, card_number: str) -> StripeCustomerRecord:
        """Test mode / localstripe only: create a card payment method and make it default."""
        pm = self.gateway.create_card_payment_method(card_number)
        return self.set_default_payment_method(customer_id, pm)
