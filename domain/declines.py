"""Which declines are worth retrying: one table of Stripe decline codes (rule version 3, D9).

Card networks and Stripe's Smart Retries retry a *soft* decline (the same card may pay later:
no funds today, the issuer or network briefly unavailable, an unexplained refusal) and never a
*hard* one (the issuer says this card will not pay: lost, stolen, closed, expired, wrong
number, fraud, a revoked authorization); Visa and Mastercard fine merchants that keep retrying
those. A decline that needs the customer (3-D Secure, ``authentication_required``) is neither:
retrying off-session fails the same way until the customer authenticates.

Source: Stripe's decline code reference, https://docs.stripe.com/declines/codes (the "Next
steps" column: "the customer should use another card" / "contact their card issuer" for a
card that will not pay, "attempt the payment again" for a transient one), and Smart Retries,
https://docs.stripe.com/billing/revenue-recovery/smart-retries ("Stripe doesn't retry
payments for failures where the issuer provided a non-retryable decline code"). Our own codes
(payments/charging.py: a customer with no default payment method, a payment method Stripe no
longer knows) are hard: nothing changes until a new payment method arrives. A code in neither
list (Stripe adds codes; ``card_declined`` with no ``decline_code``; ``do_not_honor``, which
issuers use for anything) is soft: the schedule decides, as it did before version 3.
"""

from __future__ import annotations

from enum import StrEnum


class DeclineKind(StrEnum):
    SOFT = "soft"  # retry on the policy's schedule
    HARD = "hard"  # never retry this payment method: a new one is required
    ACTION = "action"  # the customer must act (authenticate); then it is retried


HARD_DECLINES = frozenset({
    # the card is gone or must not be used
    "lost_card", "stolen_card", "pickup_card", "fraudulent", "merchant_blacklist",
    "restricted_card", "security_violation",
    # the card or account no longer exists or cannot take this payment
    "expired_card", "invalid_account", "new_account_information_available",
    "card_not_supported", "currency_not_supported", "transaction_not_allowed",
    "do_not_try_again",
    # the stored card data is wrong: only new card details fix it
    "incorrect_number", "invalid_number", "incorrect_cvc", "invalid_cvc",
    "invalid_expiry_month", "invalid_expiry_year",
    # the cardholder revoked the merchant's right to charge
    "revocation_of_authorization", "revocation_of_all_authorizations", "stop_payment_order",
    # ours (payments/charging.py): no payment method to charge, or one Stripe forgot
    "no_payment_method", "resource_missing",
})

ACTION_DECLINES = frozenset({
    "authentication_required",  # Stripe's decline code; our charging maps requires_action here
    "payment_intent_authentication_failure",
})

SOFT_EXAMPLES = frozenset({  # listed for the tests and the docs; any unknown code is soft too
    "insufficient_funds", "processing_error", "try_again_later", "generic_decline",
    "card_declined", "do_not_honor", "approve_with_id", "issuer_not_available",
    "reenter_transaction", "card_velocity_exceeded", "withdrawal_count_limit_exceeded",
    "call_issuer", "no_action_taken", "not_permitted", "service_not_allowed",
    "duplicate_transaction", "requires_payment_method", "canceled",
})


def classify(decline_code: str | None) -> DeclineKind:
    """The kind of a decline, from Stripe's ``decline_code`` (or ``code`` without one)."""
    if decline_code in HARD_DECLINES:
        return DeclineKind.HARD
    if decline_code in ACTION_DECLINES:
        return DeclineKind.ACTION
    return DeclineKind.SOFT
