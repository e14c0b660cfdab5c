"""Read models the service hands out: plain pydantic values, never ORM rows, so callers (the HTTP
API, activities) cannot lazy-load or mutate database state behind the service's back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class StripeCustomerRecord(BaseModel):
    customer_id: str
    stripe_customer_id: str
    default_payment_method: str | None = None


class CardOnFile(BaseModel):
    """The default payment method; ``brand`` and ``last4`` when Stripe says it is a card."""

    payment_method: str
    brand: str | None = None
    last4: str | None = None


class ChargeRecord(BaseModel):
    idempotency_key: str
    subscription_id: str
    customer_id: str
    amount: int
    currency: str
    purpose: str
    period_key: str
    status: Literal["pending", "succeeded", "declined"]
    payment_intent_id: str | None = None
    decline_code: str | None = None
    message: str | None = None
    created_at: datetime
    updated_at: datetime


class PendingChargeRecord(BaseModel):
    idempotency_key: str
    subscription_id: str
    customer_id: str
    amount: int
    currency: str
    description: str | None = None
    kind: Literal["one_off", "metered"]
    status: Literal["pending", "collected", "discarded"]
    resolution_key: str | None = None


class OpenCharges(BaseModel):
    """What is still open for a subscription (D23 preview): unbilled pending items plus charge
    attempts whose outcome is not known yet."""

    pending_items: int = 0
    pending_amount: int = 0
    open_attempts: int = 0
    open_amount: int = 0

    @property
    def count(self) -> int:
        return self.pending_items + self.open_attempts

    @property
    def amount(self) -> int:
        return self.pending_amount + self.open_amount
