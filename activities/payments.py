"""Temporal activities of the payments component: thin adapters over PaymentService.

They are synchronous (``def``): the Stripe SDK and SQLAlchemy sessions used here are blocking,
so the worker runs them in its ``activity_executor`` thread pool (see workers.main), where a
slow Stripe call blocks one thread, never the event loop. The rate limiter is thread-safe for
that reason.

Each one heartbeats while it runs (activities.heartbeat), so the server notices a dead worker
within the workflow's heartbeat timeout. ``no_thread_cancel_exception``: when the server gives
up on an attempt (a heartbeat timeout) or the worker shuts down, the call finishes instead of
having CancelledError raised at an arbitrary line of the Stripe SDK or a database transaction;
finishing is safe (idempotency keys), and a retry elsewhere finds what it did.

Error contract with the workflow:
- a card decline is a result: ``ChargeResult(status="declined")``;
- retryable gateway errors (429, 5xx, timeouts, connection errors, a refund in progress) and
  database errors propagate unchanged, so Temporal retries them with the activity's policy;
- non-retryable errors (invalid request, bad key, idempotency conflict) become
  ``ApplicationError(non_retryable=True)`` whose ``type`` is the error class name and whose
  details carry Stripe's HTTP status, code and request id: the workflow holds the
  subscription for an operator (workflows/failures.py) and this logs the one line to start
  from. A card that cannot pay is never one of these: it is a decline.
Every call is idempotent by the request's ``idempotency_key``, so a retry never pays twice.
"""

from __future__ import annotations

import functools

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.types import (ChargeRequest, ChargeResult, PendingChargesRequest,
                              PendingChargesResult, RefundRequest, RefundResult)
from payments.errors import PaymentError
from payments.service import PaymentService


def _translate(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PaymentError as err:
            if err.retryable:
                raise
            facts = {"http_status": err.http_status, "code": err.code,
                     "request_id": err.request_id}
            activity.logger.error("%s failed for good: %s", fn.__name__, err, extra={
                "error_type": type(err).__name__, "stripe_request_id": err.request_id,
                "http_status": err.http_status, "stripe_code": err.code})
            raise ApplicationError(str(err), facts, type=type(err).__name__,
                                   non_retryable=True) from err
    return wrapper


def _stripe_activity(name: str):
    """An activity calling Stripe: errors translated, heartbeating, never interrupted."""
    def decorate(fn):
        return activity.defn(name=name, no_thread_cancel_exception=True)(
            heartbeating(_translate(fn)))
    return decorate


class PaymentActivities:
    def __init__(self, service: PaymentService) -> None:
        self.service = service

    @_stripe_activity("charge")
    def charge(self, request: ChargeRequest) -> ChargeResult:
        result = self.service.charge(request)
        activity.logger.info("charge %s", result.status, extra={
            "subscription_id": request.subscription_id, "period": request.period_key,
            "purpose": request.purpose, "amount": request.amount,
            "idempotency_key": request.idempotency_key,
            "payment_intent_id": result.payment_intent_id, "decline_code": result.decline_code})
        return result

    @_stripe_activity("refund")
    def refund(self, request: RefundRequest) -> RefundResult:
        result = self.service.refund(request)
        activity.logger.info("refund %s", result.status, extra={
            "subscription_id": request.subscription_id, "amount": result.amount,
            "idempotency_key": request.idempotency_key, "refund_id": result.refund_id})
        return result

    @_stripe_activity("collect_pending_charges")
    def collect_pending_charges(self, request: PendingChargesRequest) -> PendingChargesResult:
        return self.service.collect_pending_charges(request)

    @_stripe_activity("discard_pending_charges")
    def discard_pending_charges(self, request: PendingChargesRequest) -> PendingChargesResult:
        return self.service.discard_pending_charges(request)

    @_stripe_activity("close_open_charges")
    def close_open_charges(self, subscription_id: str) -> list[ChargeResult]:
        return self.service.close_open_charges(subscription_id)
