"""Refunds, exactly once per idempotency key.

A refund cannot be created "unconfirmed" the way a PaymentIntent can, so two other guards
replace the two phases of charging (localstripe ignores Idempotency-Key; real Stripe honours it
for 24 h and is then a third guard):

- a lease on the ``payment_refund`` row: one caller at a time per key. Another caller gets the
  retryable ``PaymentInProgress``; a crashed holder's lease simply expires.
- reconciliation: before creating, look for a refund of that intent whose metadata carries our
  key. That covers a crash between Stripe's answer and our commit.

Which amount to refund (none, prorated, full: D6) is the workflow's decision; this only checks
that it stays within what we actually charged on that intent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from payments import store
from payments.errors import NonRetryableGatewayError, PaymentInProgress, PaymentRequestError
from payments.gateway import StripeGateway
from payments.models import Refund
from payments.types import RefundRequest, RefundResult


ALREADY_REFUNDED = "charge_already_refunded"  # Stripe's code


class Refunds:
    """Part of PaymentService (payments.service)."""

    engine: Engine
    gateway: StripeGateway
    refund_lease: timedelta
    clock: Callable[[], datetime]

    def refund(self, request: RefundRequest) -> RefundResult:
        """Refund ``amount`` of a payment intent we charged, once per idempotency key. The
        workflow decides the amount (none, prorated, full); zero is skipped."""
        if request.amount <= 0:
            return RefundResult(status="skipped")
        row = store.find_or_insert(
            self.engine, Refund, request.idempotency_key, lambda: _new_refund(request),
            lambda r: (r.payment_intent_id, r.amount) == (request.payment_intent_id,
                                                           request.amount))
        if row.status == "succeeded":
            return _refund_result(row)
        if row.status == "failed":
            raise PaymentRequestError(row.message or "refund failed")
        self._check_refundable(row)
        now = self.clock()
        if not store.take_refund_lease(self.engine, row.id, now, now + self.refund_lease):
            row = store.by_id(self.engine, Refund, row.id)
            if row.status == "succeeded":
                return _refund_result(row)
            if row.status == "failed":
                raise PaymentRequestError(row.message or "refund failed")
            raise PaymentInProgress(f"refund {row.idempotency_key} is being processed")
        try:
            found = self.gateway.find_refund(row.payment_intent_id, row.idempotency_key)
            if found is None:
                found = self.gateway.create_refund(
                    row.idempotency_key, payment_intent_id=row.payment_intent_id,
                    amount=row.amount, metadata={"subscription_id": row.subscription_id})
        except NonRetryableGatewayError as err:
            if err.code == ALREADY_REFUNDED:  # refunded by hand (the dashboard) meanwhile
                store.settle_refund(self.engine, row.id, "failed", None, err.message)
                return RefundResult(status="skipped")
            # Ours to fix (key, permissions): the row stays pending, so the operator's retry
            # after the fix refunds it (the workflow holds the subscription meanwhile).
            store.release_refund_lease(self.engine, row.id)
            raise
        return _refund_result(store.settle_refund(self.engine, row.id, "succeeded", found.id,
                                                  None))

    def _check_refundable(self, row: Refund) -> None:
        """Refund only what we charged (localstripe does not check over-refunds)."""
        charge = store.charge_of_intent(self.engine, row.payment_intent_id)
        if charge is None or charge.status != "succeeded":
            reason = f"PaymentIntent {row.payment_intent_id} is not a succeeded charge of ours"
        elif store.refunded_total(self.engine, row.payment_intent_id,
                                  row.idempotency_key) + row.amount > charge.amount:
            reason = f"refunds of {row.payment_intent_id} would exceed {charge.amount}"
        else:
            return
        store.settle_refund(self.engine, row.id, "failed", None, reason)
        raise PaymentRequestError(reason)


def _new_refund(r: RefundRequest) -> Refund:
    return Refund(idempotency_key=r.idempotency_key, subscription_id=r.subscription_id,
                  payment_intent_id=r.payment_intent_id, amount=r.amount, reason=r.reason)


def _refund_result(row: Refund) -> RefundResult:
    return RefundResult(status="succeeded", refund_id=row.stripe_refund_id, amount=row.amount)
