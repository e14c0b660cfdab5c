"""Payment errors, split by what a caller should do about them.

A card decline is *not* an error: it is a business outcome (``ChargeResult(status="declined")``)
that drives dunning (D9). What remains is either worth retrying later (Stripe overloaded or
unreachable, a lock held by a concurrent call) or will fail the same way every time (bad
parameters, bad key, an idempotency key reused for a different request). Temporal activities
turn the second kind into non-retryable ``ApplicationError`` so a bug never loops forever.
"""

from __future__ import annotations


class PaymentError(Exception):
    """Base class; ``retryable`` tells callers (and the activities) what to do."""

    retryable: bool = False

    def __init__(self, message: str, *, http_status: int | None = None,
                 code: str | None = None, param: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.param = param  # the request parameter Stripe blames (e.g. "payment_method")
        self.request_id = request_id  # Stripe's req_..., to find the request in its dashboard


class RetryableGatewayError(PaymentError):
    """429, 409, 5xx, connection errors and timeouts: the same call may work later."""

    retryable = True


class PaymentInProgress(RetryableGatewayError):
    """Another caller holds the lease on this idempotency key; retry after it finishes."""


class NonRetryableGatewayError(PaymentError):
    """Any other 4xx from Stripe (invalid request, authentication, permission)."""


class PaymentMethodRejected(NonRetryableGatewayError):
    """A card error outside of a charge (e.g. the card cannot be attached)."""


class IdempotencyConflict(NonRetryableGatewayError):
    """The idempotency key was already used for a different request (amount, customer...)."""


class PaymentRequestError(NonRetryableGatewayError):
    """A request we refuse before talking to Stripe (negative amount, unknown customer...)."""


# Stripe error codes that mean "this payment method cannot pay", whatever the call: a business
# fact about the customer's card (dunning, D9), not a fault of ours.
PAYMENT_METHOD_CODES = frozenset({
    "card_declined", "expired_card", "incorrect_number", "incorrect_cvc", "invalid_cvc",
    "invalid_expiry_month", "invalid_expiry_year", "invalid_number", "processing_error",
    "authentication_required", "payment_method_unactivated", "payment_method_not_available",
    "payment_method_provider_decline", "payment_method_unexpected_state",
    "payment_intent_authentication_failure", "payment_intent_payment_attempt_failed",
})


def payment_method_unusable(err: PaymentError) -> bool:
    """A card-level permanent error: a rejected card, or a payment method Stripe no longer
    knows (detached or deleted: 400 resource_missing on ``payment_method``). A missing
    *customer* is not one of these: it usually means a key of the wrong account or mode."""
    if isinstance(err, PaymentMethodRejected):
        return True
    if err.retryable or err.http_status not in (400, 402):
        return False
    return err.code in PAYMENT_METHOD_CODES or (
        err.code == "resource_missing" and err.param in ("payment_method", "source"))
