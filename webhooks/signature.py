"""Is this delivery really from Stripe, and recent? Checked with the Stripe SDK's own scheme
(HMAC-SHA256 over ``"{t}.{payload}"``, header ``t=...,v1=...``) before anything is parsed.

A correctly signed but old delivery is told apart from a forged one (``signature_expired`` vs
``signature_invalid``) so an operator can tell clock skew or a replay from a wrong secret.
"""

from __future__ import annotations

import stripe


class SignatureRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def verify(payload: bytes, header: str | None, secret: str, tolerance: int) -> None:
    """Raise SignatureRejected unless ``header`` signs ``payload`` within ``tolerance`` s."""
    if not header:
        raise SignatureRejected("signature_missing", "the Stripe-Signature header is missing")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureRejected("signature_invalid", "the payload is not UTF-8, so it "
                                "cannot have been signed by Stripe") from None
    try:
        stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
    except stripe.SignatureVerificationError as err:
        if _signed_but_stale(text, header, secret):
            raise SignatureRejected("signature_expired", f"the signature is older than "
                                    f"{tolerance} s; a replay or a skewed clock") from err
        raise SignatureRejected("signature_invalid", "the Stripe-Signature header does not "
                                "sign this payload with our webhook secret") from err


def _signed_but_stale(text: str, header: str, secret: str) -> bool:
    try:
        return stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        return False
