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
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code


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
