"""StripeGateway: the only code that talks to Stripe (or localstripe).

Thin on purpose: it translates SDK objects into small frozen views (``Intent``, ``RefundView``)
and SDK exceptions into the three outcomes the rest of the system reasons about (see
payments.errors): a card decline is *returned* (``Intent.declined``), transient failures raise
``RetryableGatewayError``, everything else raises ``NonRetryableGatewayError``.

Each gateway owns its own ``StripeClient`` (key and base address from StripeSettings, nothing
global), with the SDK's own retries turned off: Temporal owns retrying, and an SDK retry would
bypass both the rate limiter's accounting and our error classification. Every HTTP request the
client sends first takes a slot from the account's bucket, including list pages: the
deployment-wide one in the database (payments.shared_rate_limit) when the gateway is given the
engine and ``rate_limit_scope`` is ``deployment``, else the process-wide one
(payments.rate_limit). Every POST carries an Idempotency-Key: real Stripe replays the first
response for 24 h (localstripe ignores it, which is why payments.service does not rely on it).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy.engine import Engine

from config.settings import StripeSettings
from payments.errors import (NonRetryableGatewayError, PaymentMethodRejected,
                             RetryableGatewayError)
from payments.rate_limit import Bucket, shared_bucket
from payments.shared_rate_limit import DatabaseBucket

RETRYABLE_STATUSES = frozenset({409, 429})
MAX_IDEMPOTENCY_KEY = 255  # Stripe's limit


def stripe_key(*parts: str) -> str:
    """An Idempotency-Key from business facts, shortened deterministically (prefix + hash)
    when it would exceed Stripe's 255 characters."""
    key = ":".join(parts)
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:MAX_IDEMPOTENCY_KEY - len(digest) - 1]}#{digest}"


@dataclass(frozen=True)
class Intent:
    """What we need to know about a PaymentIntent."""

    id: str
    status: str  # Stripe's: requires_payment_method, requires_confirmation, succeeded, ...
    amount: int
    currency: str
    declined: bool = False  # True when a confirm was answered with a card error
    decline_code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class CardView:
    """What the customer recognises a card by."""

    brand: str  # Stripe's: visa, mastercard, amex, ...
    last4: str


@dataclass(frozen=True)
class RefundView:
    id: str
    status: str
    amount: int
    payment_intent_id: str | None
    idempotency_key: str | None


class _RateLimitedRequestsClient(stripe.RequestsClient):
    """The SDK's requests-based HTTP client, waiting for a token before each request."""

    def __init__(self, bucket: Bucket, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self._bucket = bucket

    def request(self, *args: Any, **kwargs: Any):
        self._bucket.acquire()
        return super().request(*args, **kwargs)

    def request_stream(self, *args: Any, **kwargs: Any):
        self._bucket.acquire()
        return super().request_stream(*args, **kwargs)


def classify(err: stripe.StripeError) -> Exception:
    """Map an SDK error (other than a decline during a charge) to our error types."""
    status = err.http_status
    facts = {"http_status": status, "code": getattr(err, "code", None),
             "param": getattr(err.error, "param", None) if err.error else None,
             "request_id": err.request_id}
    message = err.user_message or str(err) or err.__class__.__name__
    if isinstance(err, stripe.APIConnectionError | stripe.RateLimitError):
        return RetryableGatewayError(message, **facts)
    if status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return RetryableGatewayError(message, **facts)
    if isinstance(err, stripe.CardError):
        return PaymentMethodRejected(message, **facts)
    return NonRetryableGatewayError(message, **facts)


def _plain(obj: Any) -> dict:
    """SDK objects are not dicts (stripe 16); views are built from plain data."""
    if obj is None:
        return {}
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _intent(obj: Any) -> Intent:
    pi = _plain(obj)
    error = pi.get("last_payment_error") or {}
    return Intent(id=pi["id"], status=pi["status"], amount=int(pi["amount"]),
                  currency=pi["currency"],
                  decline_code=error.get("decline_code") or error.get("code"),
                  message=error.get("message"))


def _refund(obj: Any) -> RefundView:
    r = _plain(obj)
    metadata = r.get("metadata") or {}
    return RefundView(id=r["id"], status=r.get("status") or "succeeded", amount=int(r["amount"]),
                      payment_intent_id=r.get("payment_intent"),
                      idempotency_key=metadata.get("idempotency_key"))


def _fresh_key(operation: str) -> str:
    """For naturally idempotent POSTs (attach, set default, cancel): a retry is harmless, but a
    key derived from the inputs would make real Stripe replay a stale answer when the same
    change is made again later (A -> B -> A)."""
    return f"{operation}:{uuid.uuid4()}"


def bucket_for(settings: StripeSettings, engine: Engine | None) -> Bucket:
    """The deployment's bucket in the database when there is one to share (the worker and the
    API pass their engine), else this process's."""
    if engine is not None and settings.rate_limit_scope == "deployment":
        return DatabaseBucket(engine, settings.api_key, settings.max_requests_per_second)
    return shared_bucket(settings.api_key, settings.max_requests_per_second)


class StripeGateway:
    def __init__(self, settings: StripeSettings, *, engine: Engine | None = None,
                 bucket: Bucket | None = None,
                 client: stripe.StripeClient | None = None) -> None:
        self.settings = settings
        self.bucket = bucket or bucket_for(settings, engine)
        if client is None:
            base = {"api": settings.api_base} if settings.api_base else None
            client = stripe.StripeClient(
                settings.api_key, base_addresses=base, max_network_retries=0,
                http_client=_RateLimitedRequestsClient(self.bucket,
                                                       settings.request_timeout_seconds))
        self.client = client
        self._v1 = client.v1

    # Customers and payment methods -------------------------------------------------------

    def create_customer(self, idempotency_key: str, *, email: str | None = None,
                        name: str | None = None,
                        metadata: Mapping[str, str] | None = None) -> str:
        params: dict[str, Any] = {"metadata": dict(metadata or {})}
        if email:
            params["email"] = email
        if name:
            params["name"] = name
        customer = self._call(self._v1.customers.create, params,
                              {"idempotency_key": idempotency_key})
        return customer["id"]

    def create_card_payment_method(self, number: str, *, exp_month: int = 12,
                                   exp_year: int = 2034, cvc: str = "123") -> str:
        """Test mode / localstripe only: real Stripe takes card numbers from Stripe.js."""
        pm = self._call(self._v1.payment_methods.create,
                        {"type": "card", "card": {"number": number, "exp_month": exp_month,
                                                  "exp_year": exp_year, "cvc": cvc}},
                        {"idempotency_key": _fresh_key("pm")})
        return pm["id"]

    def attach_payment_method(self, customer_id: str, payment_method_id: str) -> str:
        """Attach the payment method and make it the default for invoices and renewals."""
        self._call(lambda p, o: self._v1.payment_methods.attach(payment_method_id, p, o),
                   {"customer": customer_id}, {"idempotency_key": _fresh_key("attach")})
        self._call(lambda p, o: self._v1.customers.update(customer_id, p, o),
                   {"invoice_settings": {"default_payment_method": payment_method_id}},
                   {"idempotency_key": _fresh_key("default_pm")})
        return payment_method_id

    def card_of(self, payment_method_id: str) -> CardView | None:
        """The card's brand and last four digits; None for a payment method that is not a
        card."""
        pm = _plain(self._call(
            lambda p, o: self._v1.payment_methods.retrieve(payment_method_id, p, o), {}, {}))
        card = pm.get("card") or {}
        if not card.get("brand") or not card.get("last4"):
            return None
        return CardView(brand=str(card["brand"]), last4=str(card["last4"]))

    # PaymentIntents ------------------------------------------------------------------------

    def create_payment_intent(self, idempotency_key: str, *, amount: int, currency: str,
                              customer: str, payment_method: str,
                              metadata: Mapping[str, str] | None = None) -> Intent:
        """An UNCONFIRMED intent: no money moves until confirm_payment_intent."""
        pi = self._call(self._v1.payment_intents.create,
                        {"amount": amount, "currency": currency, "customer": customer,
                         "payment_method": payment_method, "metadata": dict(metadata or {})},
                        {"idempotency_key": idempotency_key})
        return _intent(pi)

    def confirm_payment_intent(self, payment_intent_id: str, *, idempotency_key: str) -> Intent:
        """Confirm (charge). A card decline is returned as ``Intent(declined=True)``."""
        params = {"off_session": True} if self.settings.confirm_off_session else {}
        try:
            pi = self._call(lambda p, o: self._v1.payment_intents.confirm(payment_intent_id, p, o),
                            params, {"idempotency_key": idempotency_key}, declines=True)
        except stripe.CardError as err:
            error = err.error
            # Real Stripe embeds the intent in the error; localstripe does not.
            embedded = _plain(getattr(error, "payment_intent", None) if error else None)
            return Intent(id=payment_intent_id,
                          status=embedded.get("status") or "requires_payment_method",
                          amount=int(embedded.get("amount") or 0),
                          currency=embedded.get("currency") or "",
                          declined=True,
                          decline_code=(getattr(error, "decline_code", None) if error else None)
                          or err.code or "card_declined",
                          message=err.user_message or str(err))
        return _intent(pi)

    def retrieve_payment_intent(self, payment_intent_id: str) -> Intent:
        return _intent(self._call(lambda p, o: self._v1.payment_intents.retrieve(
            payment_intent_id, p, o), {}, {}))

    def cancel_payment_intent(self, payment_intent_id: str) -> Intent:
        return _intent(self._call(lambda p, o: self._v1.payment_intents.cancel(
            payment_intent_id, p, o), {}, {"idempotency_key": _fresh_key("cancel")}))

    # Refunds -------------------------------------------------------------------------------

    def create_refund(self, idempotency_key: str, *, payment_intent_id: str, amount: int,
                      metadata: Mapping[str, str] | None = None) -> RefundView:
        """``metadata`` should carry ``idempotency_key`` so find_refund can recognise it."""
        refund = self._call(self._v1.refunds.create,
                            {"payment_intent": payment_intent_id, "amount": amount,
                             "metadata": {"idempotency_key": idempotency_key,
                                          **dict(metadata or {})}},
                            {"idempotency_key": idempotency_key})
        return _refund(refund)

    def find_refund(self, payment_intent_id: str, idempotency_key: str) -> RefundView | None:
        """The refund created earlier for this key, if any (recovery after a lost response)."""
        def search(params, options):
            page = self._v1.refunds.list(params, options)
            return next((v for v in map(_refund, page.auto_paging_iter())
                         if v.idempotency_key == idempotency_key), None)

        return self._call(search, {"payment_intent": payment_intent_id, "limit": 100}, {})

    # Plumbing ------------------------------------------------------------------------------

    def _call(self, fn, params: dict, options: dict, *, declines: bool = False):
        try:
            return fn(params, options)
        except stripe.CardError as err:
            if declines:
                raise
            raise classify(err) from err
        except stripe.StripeError as err:
            raise classify(err) from err
