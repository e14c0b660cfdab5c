"""The API's only door to payments: every PaymentService call the routes make is here, so the
routes read as business steps and payment failures become problems in one place.

Failures are sorted by who can fix them: a card or payment method the provider rejects is the
caller's input (422 naming the field), a declined top-up charge is a 402, an unreachable or
overloaded provider is a 503 (retry with the same key).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from activities.types import ChargeRequest
from api.problems import ApiProblem, invalid
from payments.errors import (
    IdempotencyConflict,
    NonRetryableGatewayError,
    PaymentError,
    RetryableGatewayError,
)
from payments.records import OpenCharges, StripeCustomerRecord
from payments.service import PaymentService

# What a purchased credit costs. There is no setting for it yet (see the report): one credit
# is one minor unit of the default currency.
TOPUP_UNIT_PRICE = 1
TOPUP_CURRENCY = "usd"
_CARD_NUMBER = re.compile(r"^\d{12,19}$")


@contextmanager
def payment_errors(field: str) -> Iterator[None]:
    """Translate payment errors for a request whose payment input is ``field``."""
    try:
        yield
    except IdempotencyConflict as err:
        raise invalid("idempotency_key", "idempotency_key_reused",
                      "this idempotency_key was already used for a different request") from err
    except RetryableGatewayError as err:
        raise ApiProblem(503, "upstream-unavailable", f"the payment provider did not answer: "
                         f"{err.message}; retry with the same key",
                         code="payments_unavailable") from err
    except (NonRetryableGatewayError, PaymentError) as err:
        raise invalid(field, err.code or "payment_method_rejected",
                      f"the payment provider refused it: {err.message}") from err


def attach(payments: PaymentService, customer_id: str,
           payment_method: str) -> StripeCustomerRecord:
    """Make a test card number (test mode) or a pm_ id the customer's default."""
    if _CARD_NUMBER.match(payment_method):
        return payments.add_test_card(customer_id, payment_method)
    return payments.set_default_payment_method(customer_id, payment_method)


def create_stripe_customer(payments: PaymentService, customer_id: str, email: str, name: str,
                           payment_method: str | None) -> str | None:
    """The Stripe customer, and its default payment method; returns that method's id."""
    with payment_errors("payment_method"):
        record = payments.create_customer(customer_id, email=email, name=name)
        if payment_method is not None:
            record = attach(payments, customer_id, payment_method)
    return record.default_payment_method


def set_default_payment_method(payments: PaymentService, customer_id: str,
                               payment_method: str, field: str) -> str | None:
    with payment_errors(field):
        return attach(payments, customer_id, payment_method).default_payment_method


def default_payment_method(payments: PaymentService, customer_id: str) -> str | None:
    record = payments.get_customer(customer_id)
    return record.default_payment_method if record else None


def charge_topup(payments: PaymentService, customer_id: str, credits: int,
                 idempotency_key: str) -> str | None:
    """Charge the default payment method for ``credits``, once per key; the PaymentIntent id.
    A retry of a declined key stays declined (exactly once): use a new key after fixing the
    payment method."""
    with payment_errors("payment_method"):
        result = payments.charge(ChargeRequest(
            idempotency_key=idempotency_key, subscription_id="", customer_id=customer_id,
            amount=credits * TOPUP_UNIT_PRICE, currency=TOPUP_CURRENCY,
            description=f"{credits} credits", purpose="topup", period_key="topup"))
    if result.status != "succeeded":
        raise ApiProblem(402, "payment-failed", f"the top-up payment was declined "
                         f"({result.decline_code}): {result.message or 'no reason given'}; "
                         "update the payment method and retry with a new idempotency_key",
                         code="payment_declined", decline_code=result.decline_code)
    return result.payment_intent_id


def open_charges(payments: PaymentService, subscription_id: str) -> OpenCharges:
    return payments.open_charges(subscription_id)
