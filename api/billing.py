"""The API's only door to payments: every PaymentService call the routes make is here, so the
routes read as business steps and payment failures become problems in one place.

Failures are sorted by who can fix them: a card or payment method the provider rejects is the
caller's input (422 naming the field), a declined top-up charge is a 402, an unreachable or
overloaded provider is a 503 (retry with the same key). Credit purchases run as workflows
(workflows.credit_purchase); here their results become answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from activities.types import CreditPurchase
from api.problems import ApiProblem, invalid
from payments.errors import (
    IdempotencyConflict,
    NonRetryableGatewayError,
    PaymentError,
    RetryableGatewayError,
)
from payments.records import OpenCharges, StripeCustomerRecord
from payments.service import PaymentService
from workflows import purchase_ops
from workflows.types import PurchaseResult

# A purchase that did not finish in time: it goes on; a retry soon finds its outcome.
RETRY_AFTER_SECONDS = 5
START_DEADLINE_SECONDS = 5.0
log = logging.getLogger("api.billing")
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
        log.warning("payment provider unavailable: %s", err.message)  # its text stays here
        raise ApiProblem(503, "upstream-unavailable", "the payment provider did not answer; "
                         "retry with the same key", code="payments_unavailable",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from err
    except (NonRetryableGatewayError, PaymentError) as err:
        raise invalid(field, err.code or "payment_method_rejected",
                      f"the payment provider refused it: {err.message}") from err


def check_card_number(payment_method: str | None, field: str, live: bool) -> None:
    """Raw card numbers are test cards: with a live key (production) the API takes payment
    method ids only, so card data never passes through it (422 naming ``field``)."""
    if live and payment_method is not None and _CARD_NUMBER.match(payment_method):
        raise invalid(field, "card_number_not_allowed", "raw card numbers are accepted with "
                      "test keys only; in production send a payment method id (pm_...) "
                      "collected by Stripe")


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


async def buy_credits(client: Client, purchase: CreditPurchase, task_queue: str,
                      wait: float) -> PurchaseResult:
    """Run the purchase's workflow (or join it) and answer with its credited result, waiting
    at most ``wait`` seconds; every other end is a problem. The caller's retry with the same
    key joins the same purchase, so a 503 here never charges twice."""
    try:
        async with asyncio.timeout(wait):
            result = await purchase_ops.buy(client, purchase, task_queue)
    except TimeoutError:
        raise ApiProblem(503, "upstream-unavailable", "the payment is still in progress; retry "
                         "with the same idempotency_key for its outcome",
                         code="purchase_in_progress",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    except RPCError as err:
        log.warning("purchase %s: %s", purchase.idempotency_key, err)
        raise ApiProblem(503, "upstream-unavailable", "the workflow engine did not answer; "
                         "retry with the same idempotency_key", code="temporal_unavailable",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    except WorkflowFailureError as err:  # e.g. terminated by an operator: a retry runs anew
        log.warning("purchase %s stopped: %s", purchase.idempotency_key, err.cause)
        raise ApiProblem(503, "upstream-unavailable", "the purchase was stopped before it "
                         "ended; retry with the same idempotency_key (nothing is charged or "
                         "credited twice)", code="purchase_interrupted",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    if result.credits != purchase.credits or (result.stage == "charge"
                                              and result.error_type == "IdempotencyConflict"):
        raise invalid("idempotency_key", "idempotency_key_reused",
                      "this idempotency_key was already used for a different request")
    if result.status == "declined":
        raise ApiProblem(402, "payment-failed", f"the top-up payment was declined "
                         f"({result.decline_code}): {result.message or 'no reason given'}; "
                         "update the payment method and retry with a new idempotency_key",
                         code="payment_declined", decline_code=result.decline_code)
    if result.status == "failed" and result.stage == "charge":
        log.error("purchase %s: the payment provider refused the charge (%s, HTTP %s)",
                  purchase.idempotency_key, result.error_type, result.http_status)
        raise ApiProblem(502, "upstream-unavailable", "the payment provider refused the "
                         "request; nothing was charged. Retry later with the same "
                         "idempotency_key", code="payment_provider_error",
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if result.status == "failed":
        log.error("purchase %s: charged (%s) but the credits were refused (%s)",
                  purchase.idempotency_key, result.payment_intent_id, result.error_type)
        raise ApiProblem(500, "internal-error", "the payment went through but the credits "
                         "could not be recorded; it has been logged for reconciliation",
                         code="credit_failed")
    return result


async def start_auto_recharge(client: Client, purchase: CreditPurchase,
                              task_queue: str) -> None:
    """D19, fire and forget: the debit that triggered it has succeeded whatever happens here.
    Not started (the engine unreachable) means nothing was charged; the same debit retried
    starts it again."""
    try:
        async with asyncio.timeout(START_DEADLINE_SECONDS):
            await purchase_ops.start(client, purchase, task_queue)
    except (TimeoutError, RPCError) as err:
        log.warning("auto-recharge %s not started: %s", purchase.idempotency_key, err or
                    "timed out", extra={"customer_id": purchase.customer_id})


def open_charges(payments: PaymentService, subscription_id: str) -> OpenCharges:
    return payments.open_charges(subscription_id)
