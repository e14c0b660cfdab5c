"""Inputs and outputs of the payment operations: plain pydantic models (never ORM objects).

They live here, with the service that owns them, because payments must not import the
activities above it; activities.types re-exports them unchanged, so workflow histories (JSON
by field name) read the same. Every request that moves money carries an ``idempotency_key``
derived from business facts only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from domain import purchases
from invoices.types import InvoiceLine


class ChargeRequest(BaseModel):
    idempotency_key: str
    subscription_id: str
    customer_id: str
    amount: int  # minor units
    currency: str
    description: str
    purpose: Literal["renewal", "first_period", "proration", "final_invoice", "topup",
                     "auto_recharge"]
    period_key: str  # the billing period this charge pays for, e.g. the period start ISO string
    # The invoice's lines (period, plan, discount, pending items); empty: one line with the
    # description and amount. Read when the first attempt creates the invoice.
    lines: list[InvoiceLine] = []


class ChargeResult(BaseModel):
    """``amount`` and ``period_key`` echo the charge record, so the workflow can check that a
    result belongs to the command it issued (None in results recorded before they existed)."""

    status: Literal["succeeded", "declined"]
    idempotency_key: str
    payment_intent_id: str | None = None
    decline_code: str | None = None
    message: str | None = None
    amount: int | None = None
    period_key: str | None = None


class CreditPurchase(BaseModel):
    """Credits bought with one charge (D16 top-up, D19 auto-recharge; see domain.purchases).
    Fixed at the first request: a duplicate request joins the purchase started with this
    input, whatever its own amount or time, and charge and grant share ``idempotency_key``."""

    idempotency_key: str
    customer_id: str
    purpose: purchases.Purpose
    credits: int
    amount: int  # minor units charged
    currency: str
    at: datetime  # the first request: when the credits become usable
    expires_at: datetime | None = None

    def charge_request(self) -> ChargeRequest:
        return ChargeRequest(
            idempotency_key=self.idempotency_key, subscription_id="",
            customer_id=self.customer_id, amount=self.amount, currency=self.currency,
            description=(f"{self.credits} credits" if self.purpose == "topup"
                         else f"auto-recharge {self.credits} credits"),
            purpose=self.purpose, period_key=purchases.period_key(self.purpose,
                                                                   self.expires_at))


class RefundRequest(BaseModel):
    idempotency_key: str
    subscription_id: str
    payment_intent_id: str
    amount: int  # minor units, > 0
    reason: str


class RefundResult(BaseModel):
    status: Literal["succeeded", "skipped"]
    refund_id: str | None = None
    amount: int = 0


class PendingChargesRequest(BaseModel):
    """Collect (D7) or discard (D6) what a subscription accumulated for its current term."""

    idempotency_key: str
    subscription_id: str
    customer_id: str
    currency: str
    period_key: str


class PendingChargesResult(BaseModel):
    amount: int = 0
    items: int = 0
    charge: ChargeResult | None = None


class ReconcileRequest(BaseModel):
    """One run of the payments reconciliation job (payments.reconcile)."""

    dry_run: bool = False
