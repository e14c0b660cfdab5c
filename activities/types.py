"""Inputs and outputs of activities: plain pydantic models (never ORM objects), so workflow
histories stay readable JSON and replay does not depend on the database layer.

The value types of one service live with it (payments.types, ledger.types: a service never
imports activities) and are re-exported here for the workflow side; only the effects batch,
which spans the ledger and the event log, is defined here.

Every activity that moves money or credits carries an ``idempotency_key`` derived from business
facts only ({subscription}:{period}:{attempt} and the like), never from time, randomness or run ids.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from domain.model import Event
from invoices.types import InvoiceLine
from ledger.types import CreditGrant, CreditPeriodChange
from payments.types import (ChargeRequest, ChargeResult, CreditPurchase, PendingChargesRequest,
                            PendingChargesResult, ReconcileRequest, RefundRequest, RefundResult)

__all__ = ["ChargeRequest", "ChargeResult", "CreditChangeEffect", "CreditGrant",
           "CreditPeriodChange", "CreditPurchase", "Effect", "EffectBatch", "EventEffect",
           "GrantEffect", "InvoiceLine", "PendingChargesRequest", "PendingChargesResult", "ReconcileRequest",
           "RefundRequest", "RefundResult"]


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
