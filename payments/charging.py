"""Charging, exactly once per idempotency key, and closing what is still open (D6).

Why charging is exactly-once although localstripe ignores Idempotency-Key (real Stripe keeps
keys 24 h, so there it is a second line of defence, not the first):

1. The ``charge_attempt`` row is found or inserted by its unique idempotency key, with its
   invoice (found by the business charge's key, or numbered: invoices.numbering) in the same
   transaction. A row with an outcome (succeeded/declined) is answered from the database;
   Stripe is not called. Settling an attempt moves its invoice in the same transaction.
2. Money only moves on *confirm*. We first create an UNCONFIRMED PaymentIntent and store its id
   on the row (compare-and-set: only if none is stored yet). A racing caller that loses the
   compare-and-set cancels its own intent and continues with the stored one.
3. Only the stored intent is ever confirmed. Any retry (after a crash, a lost response, a
   timeout) retrieves the stored intent and reconciles: succeeded -> success;
   requires_payment_method after a decline -> declined; requires_confirmation -> confirm now.
   A concurrent confirm is rejected by Stripe (state no longer requires_confirmation), upon
   which we retrieve and reconcile again. So one key -> at most one confirmed intent.
4. A crash after Stripe created an intent but before its id was stored leaves an orphan intent
   in ``requires_confirmation``: no money moved, nobody will ever confirm it (its id is known
   nowhere). The retry creates a new intent (real Stripe instead replays the first one for the
   same Idempotency-Key). Orphans are harmless; Stripe lets unconfirmed intents lapse.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine

from invoices import store as invoices
from payments import store
from payments.errors import (NonRetryableGatewayError, PaymentError, PaymentRequestError,
                             RetryableGatewayError, payment_method_unusable)
from payments.gateway import Intent, StripeGateway, stripe_key
from payments.models import ChargeAttempt
from payments.records import ChargeRecord
from payments.types import ChargeRequest, ChargeResult

log = logging.getLogger(__name__)

CANCELABLE = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
RENEWAL_PURPOSES = ("renewal", "first_period")
NO_PAYMENT_METHOD = "no_payment_method"
CANCELED = "canceled"


class Charging:
    """Part of PaymentService (payments.service)."""

    engine: Engine
    gateway: StripeGateway

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge the customer's default payment method once per ``request.idempotency_key``.
        A decline is a result, not an exception."""
        if request.amount < 0:
            raise PaymentRequestError(f"charge amount must be >= 0, got {request.amount}")
        attempt = store.find_or_insert(
            self.engine, ChargeAttempt, request.idempotency_key,
            lambda: _new_attempt(request),
            lambda row: (row.amount, row.currency, row.customer_id, row.subscription_id)
            == (request.amount, request.currency, request.customer_id, request.subscription_id),
            also=lambda session, row: invoices.open_for_charge(
                session, purpose=row.purpose, charge_key=row.idempotency_key,
                subscription_id=row.subscription_id, customer_id=row.customer_id,
                period_key=row.period_key, amount=row.amount, currency=row.currency,
                description=request.description, lines=request.lines))
        if attempt.status != "pending":
            return _result(attempt)
        if attempt.amount == 0:
            return self._settle(attempt, "succeeded", None, "nothing to charge")
        intent = None
        if attempt.payment_intent_id is None:
            attempt, intent = self._create_intent(attempt)
            if attempt.status != "pending":
                return _result(attempt)
        if intent is None:  # a retry, or we lost the race: reconcile with the stored intent
            intent = self.gateway.retrieve_payment_intent(attempt.payment_intent_id)
        return self._drive(attempt, intent)

    def _create_intent(self, attempt: ChargeAttempt) -> tuple[ChargeAttempt, Intent | None]:
        """Phase (b): an unconfirmed intent, its id stored before anything is confirmed.
        Returns the row after, and the intent if it is the one stored."""
        customer = store.get_customer(self.engine, attempt.customer_id)
        if customer is None or not customer.default_payment_method:
            return store.settle_charge(self.engine, attempt.id, "declined", NO_PAYMENT_METHOD,
                                       "the customer has no default payment method",
                                       only_without_intent=True), None
        pm = customer.default_payment_method
        try:
            intent = self.gateway.create_payment_intent(
                # The payment method is part of the key: real Stripe rejects a key replayed
                # with different parameters, and the default may change between a crash and
                # the retry.
                stripe_key(attempt.idempotency_key, "create", pm),
                amount=attempt.amount, currency=attempt.currency,
                customer=customer.stripe_customer_id, payment_method=pm,
                metadata={"idempotency_key": attempt.idempotency_key,
                          "subscription_id": attempt.subscription_id,
                          "customer_id": attempt.customer_id, "purpose": attempt.purpose,
                          "period_key": attempt.period_key,
                          "description": (attempt.description or "")[:500]})
        except NonRetryableGatewayError as err:
            if not payment_method_unusable(err):
                raise  # ours to fix (key, permissions, request): the subscription is held
            # Detached, deleted or rejected card: a decline, recorded with Stripe's code (D9).
            return store.settle_charge(self.engine, attempt.id, "declined", err.code,
                                       err.message, only_without_intent=True), None
        row = store.store_intent(self.engine, attempt.id, intent.id,
                                 customer.stripe_customer_id, pm)
        if row.payment_intent_id != intent.id:
            self._abandon(intent.id)  # lost the race (or the attempt was closed meanwhile)
            return row, None
        return row, intent

    def _drive(self, attempt: ChargeAttempt, intent: Intent) -> ChargeResult:
        """Phase (c) and every retry: bring the stored intent to an outcome and record it."""
        for _ in range(4):
            outcome = _outcome(intent)
            if outcome is not None:
                if intent.status == "requires_action":
                    self._abandon(intent.id)  # off-session: nobody can authenticate it
                return self._settle(attempt, *outcome)
            if intent.status == "processing":
                raise RetryableGatewayError(f"PaymentIntent {intent.id} is still processing")
            if intent.status != "requires_confirmation":
                raise NonRetryableGatewayError(
                    f"PaymentIntent {intent.id} has unexpected status {intent.status}")
            key = stripe_key(attempt.idempotency_key, "confirm", intent.id)
            try:
                intent = self.gateway.confirm_payment_intent(intent.id, idempotency_key=key)
            except NonRetryableGatewayError as err:
                # Typically a concurrent confirm or cancel moved the intent on: look again.
                latest = self.gateway.retrieve_payment_intent(intent.id)
                if latest.status == "requires_confirmation":
                    if payment_method_unusable(err):  # e.g. detached since the create
                        return self._settle(attempt, "declined", err.code, err.message)
                    raise
                intent = latest
        raise RetryableGatewayError(f"PaymentIntent {intent.id} did not settle")

    def _settle(self, attempt: ChargeAttempt, status: str, code: str | None,
                message: str | None) -> ChargeResult:
        row = store.settle_charge(self.engine, attempt.id, status, code, message)
        if row.status != status:
            log.warning("charge %s already settled as %s (observed %s)",
                        row.idempotency_key, row.status, status)
        return _result(row)

    def _abandon(self, payment_intent_id: str) -> None:
        """Best effort: an unconfirmed intent moves no money, cancelling it is only tidy."""
        try:
            self.gateway.cancel_payment_intent(payment_intent_id)
        except PaymentError as err:
            log.info("could not cancel PaymentIntent %s: %s", payment_intent_id, err)

    def close_open_charges(self, subscription_id: str) -> list[ChargeResult]:
        """D6: make sure nothing of this subscription can still be paid or retried: cancel the
        intents of pending and declined attempts. An intent found paid is recorded as paid."""
        results = []
        for attempt in store.attempts_to_close(self.engine, subscription_id):
            results.append(self._close(attempt))
            store.mark_closed(self.engine, attempt.id)
        return results

    def _close(self, attempt: ChargeAttempt) -> ChargeResult:
        if attempt.payment_intent_id is None:
            attempt = store.settle_charge(self.engine, attempt.id, "declined", CANCELED,
                                          "closed before an intent was created",
                                          only_without_intent=True)
            if attempt.payment_intent_id is None:
                return _result(attempt)
        intent = self.gateway.retrieve_payment_intent(attempt.payment_intent_id)
        if intent.status in CANCELABLE:
            try:
                intent = self.gateway.cancel_payment_intent(intent.id)
            except NonRetryableGatewayError:  # it moved on meanwhile (e.g. confirmed)
                intent = self.gateway.retrieve_payment_intent(intent.id)
        if attempt.status != "pending":
            return _result(attempt)
        outcome = _outcome(intent)
        if outcome is None:
            raise RetryableGatewayError(f"PaymentIntent {intent.id} is {intent.status}")
        return self._settle(attempt, *outcome)

    def get_charge(self, idempotency_key: str) -> ChargeRecord | None:
        row = store.by_key(self.engine, ChargeAttempt, idempotency_key)
        return ChargeRecord.model_validate(row, from_attributes=True) if row else None

    def last_renewal_charge(self, subscription_id: str, period_key: str) -> ChargeRecord | None:
        """The successful charge that paid this period (what a prorated refund refunds)."""
        row = store.last_succeeded_charge(self.engine, subscription_id, period_key,
                                          RENEWAL_PURPOSES)
        return ChargeRecord.model_validate(row, from_attributes=True) if row else None


def _outcome(intent: Intent) -> tuple[str, str | None, str | None] | None:
    """(status, decline_code, message) once the intent has an outcome; None if not yet."""
    if intent.declined:
        return "declined", intent.decline_code or "card_declined", intent.message
    if intent.status == "succeeded":
        return "succeeded", None, None
    if intent.status == "requires_payment_method":
        return "declined", intent.decline_code or "requires_payment_method", intent.message
    if intent.status == "canceled":
        return "declined", CANCELED, "the payment was canceled"
    if intent.status == "requires_action":
        return "declined", "authentication_required", "the payment needs authentication"
    return None


intent_outcome = _outcome  # the reconciliation job reads an intent's outcome the same way


def _new_attempt(r: ChargeRequest) -> ChargeAttempt:
    return ChargeAttempt(idempotency_key=r.idempotency_key, subscription_id=r.subscription_id,
                         customer_id=r.customer_id, amount=r.amount, currency=r.currency,
                         purpose=r.purpose, period_key=r.period_key, description=r.description)


def _result(row: ChargeAttempt) -> ChargeResult:
    if row.status not in ("succeeded", "declined"):
        raise RetryableGatewayError(f"charge {row.idempotency_key} has no outcome yet")
    return ChargeResult(status=row.status, idempotency_key=row.idempotency_key,
                        payment_intent_id=row.payment_intent_id, decline_code=row.decline_code,
                        message=row.message, amount=row.amount, period_key=row.period_key)
