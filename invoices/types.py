"""Values the invoices service takes and hands out (plain pydantic, never ORM rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

LineKind = Literal["subscription", "discount", "pending_item", "credits", "charge", "proration"]


class InvoiceLine(BaseModel):
    """One line: ``amount`` in minor units (a discount is negative); the period and plan when
    the line is for a subscription period."""

    kind: LineKind
    description: str
    amount: int
    plan: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None


class InvoiceRecord(BaseModel):
    id: str
    number: int
    display_number: str
    organization_id: str
    customer_id: str
    subscription_id: str
    kind: str
    period_key: str
    currency: str
    total: int
    amount_paid: int
    status: Literal["open", "paid", "void", "uncollectible"]
    lines: list[InvoiceLine]
    payment_intent_id: str | None = None
    created_at: datetime
    paid_at: datetime | None = None
    closed_at: datetime | None = None
