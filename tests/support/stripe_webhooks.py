"""Stripe events as Stripe sends them: the envelope, and the ``Stripe-Signature`` header of
Stripe's real scheme (HMAC-SHA256 over ``"{t}.{payload}"``, header ``t=...,v1=...``); and
what a customer does at Stripe meanwhile (localstripe), which the handlers re-read."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import stripe

from payments import store as payment_store
from store.engine import get_engine
from tests.fakes_stripe import CARD_OK

PATH = "/webhooks/stripe"


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(type_: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    return {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": type_,
            "created": int(time.time()) if created is None else created, "livemode": False,
            "api_version": "2024-06-20", "data": {"object": obj}}


def signed(evt: dict[str, Any], secret: str,
           timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one delivery of ``evt`` (signed now, as each retry is)."""
    payload = json.dumps(evt).encode()
    return payload, {"Stripe-Signature": sign(payload, secret, timestamp),
                     "Content-Type": "application/json"}


class Stripe:
    """Direct access to localstripe: what a customer does at Stripe (portal, Checkout)."""

    def __init__(self, settings) -> None:
        self.v1 = stripe.StripeClient(settings.stripe.api_key, base_addresses={
            "api": settings.stripe.api_base}).v1
        self.engine = get_engine(settings.database_url)

    def stripe_id(self, customer_id: str) -> str:
        return payment_store.get_customer(self.engine, customer_id).stripe_customer_id

    def local_default(self, customer_id: str) -> str | None:
        return payment_store.get_customer(self.engine, customer_id).default_payment_method

    def attach(self, customer_id: str, card: str = CARD_OK, *, default: bool = True) -> str:
        pm = self.v1.payment_methods.create({"type": "card", "card": {
            "number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        self.v1.payment_methods.attach(pm.id, {"customer": self.stripe_id(customer_id)})
        if default:
            self.v1.customers.update(self.stripe_id(customer_id), {
                "invoice_settings": {"default_payment_method": pm.id}})
        return pm.id

    def customer(self, customer_id: str) -> dict[str, Any]:
        return self.v1.customers.retrieve(self.stripe_id(customer_id)).to_dict()

    def payment_method(self, pm_id: str) -> dict[str, Any]:
        return self.v1.payment_methods.retrieve(pm_id).to_dict()
