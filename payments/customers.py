"""Our customer id -> Stripe customer and default payment method (``stripe_customer``).

Renewals are merchant-initiated charges of the *default* payment method, so the mapping is all a
charge needs. The HTTP API creates customers and changes payment methods through these methods;
a new default payment method is what lets the workflow retry a failed renewal at once (D9).
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.engine import Engine

from payments import store
from payments.errors import PaymentError, PaymentRequestError
from payments.gateway import CardView, StripeGateway
from payments.models import StripeCustomer
from payments.records import CardOnFile, StripeCustomerRecord

log = logging.getLogger(__name__)

# A payment method's card never changes, so its brand and last four digits are kept for the
# life of the service (one per process): one Stripe GET per card, not one per page view. A
# failed lookup is retried only after FAILED_LOOKUP_SECONDS, so a slow or absent Stripe slows
# one view, not all.
MAX_CACHED_CARDS = 10_000
FAILED_LOOKUP_SECONDS = 60.0


class Customers:
    """Part of PaymentService (payments.service)."""

    engine: Engine
    gateway: StripeGateway
    _cards: dict[str, CardView | None]  # set by PaymentService.__init__
    _failed_cards: dict[str, float]

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

    def card_on_file(self, customer_id: str) -> CardOnFile | None:
        """The default payment method with its card's brand and last four digits when Stripe
        gives them (brand and last4 None otherwise: the caller shows the id); None without
        one."""
        record = self.get_customer(customer_id)
        pm = record.default_payment_method if record else None
        if pm is None:
            return None
        card = self._card(pm)
        return CardOnFile(payment_method=pm, brand=card.brand if card else None,
                          last4=card.last4 if card else None)

    def _card(self, payment_method_id: str) -> CardView | None:
        if payment_method_id in self._cards:
            return self._cards[payment_method_id]
        if time.monotonic() < self._failed_cards.get(payment_method_id, 0.0):
            return None
        try:
            card = self.gateway.card_of(payment_method_id)
        except PaymentError as err:
            log.warning("card of %s: %s", payment_method_id, err)
            if len(self._failed_cards) >= MAX_CACHED_CARDS:
                self._failed_cards.clear()
            self._failed_cards[payment_method_id] = time.monotonic() + FAILED_LOOKUP_SECONDS
            return None
        if len(self._cards) >= MAX_CACHED_CARDS:
            self._cards.clear()
        self._cards[payment_method_id] = card
        return card
