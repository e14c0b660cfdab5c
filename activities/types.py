"""Inputs and outputs of activities: plain pydantic models (never ORM objects), so workflow
histories stay readable JSON and replay does not depend on the database layer.

Every activity that moves money or credits carries an ``idempotency_key`` derived from business
facts only ({subscription}:{period}:{attempt} and the like), never from time, randomness or run ids.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from domain import purchases
from domain.model import Event


class ChargeRequest(BaseModel):
    idempotency_key: str
    subscription_id: str
    customer_id: str
    amount: int  # minor units
    currency: str
    description: str
    purpose: Literal["renewal", "first_period", "final_invoice", "topup", "auto_recharge"]
    period_key: str  # the billing period this charge pays for, e.g. the period start ISO string


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


class CreditGrant(BaseModel):
    idempotency_key: str
    customer_id: str
    subscription_id: str
    period_key: str
    amount: int
    period_start: datetime
    period_end: datetime


class CreditPeriodChange(BaseModel):
    """Forfeit a period's subscription credits (D15), or lock/unlock purchased credits (D16/D17)."""

    idempotency_key: str
    customer_id: str
    subscription_id: str
    period_key: str
    at: datetime


# Effects batch: the ledger and event-log writes of one decision, applied by one activity ------

class GrantEffect(BaseModel):
    kind: Literal["grant_period_credits"] = "grant_period_credits"
    grant: CreditGrant


class CreditChangeEffect(BaseModel):
    kind: Literal["forfeit_period_credits", "lock_purchased_credits", "unlock_purchased_credits"]
    change: CreditPeriodChange


class EventEffect(BaseModel):
    kind: Literal["record_event"] = "record_event"
    event: Event


Effect = Annotated[GrantEffect | CreditChangeEffect | EventEffect, Field(discriminator="kind")]


class EffectBatch(BaseModel):
    """The local writes of one decision, in the core's order. They touch only this service's
    database, each under its own idempotency key (ledger) or event id (event log), so one
    activity applies them all and a retry re-applies the whole batch harmlessly. Money leaving
    through Stripe is never batched: a charge's outcome feeds the core before anything else."""

    subscription_id: str
    effects: list[Effect]


class ReconcileRequest(BaseModel):
    """One run of the payments reconciliation job (payments.reconcile)."""

    dry_run: bool = False
