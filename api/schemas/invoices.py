"""Invoice resources (invoices.store records, shaped like the API's other objects)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from invoices.types import InvoiceLine, InvoiceRecord

InvoiceStatus = Literal["open", "paid", "void", "uncollectible"]


class InvoiceResource(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "object": "invoice", "id": "in_3f9a0c1d2e4b5a6c7d8e", "number": "INV-000042",
        "sequence": 42, "organization": "org_8sKd92LmQpXz0aBc",
        "customer": "cus_8sKd92LmQpXz0aBc", "subscription": "sub_1JqX8kXmRZw5BqVs",
        "kind": "renewal", "status": "paid", "currency": "usd", "total": 2000,
        "amount_paid": 2000, "amount_due": 0,
        "lines": [{"kind": "subscription", "description": "Monthly subscription",
                   "amount": 2000, "plan": "monthly",
                   "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z"}],
        "payment_intent": "pi_123", "created": "2026-11-01T00:00:02Z",
        "paid_at": "2026-11-01T00:00:03Z", "closed_at": None,
        "pdf": "/v1/invoices/in_3f9a0c1d2e4b5a6c7d8e/pdf"}]})

    object: Literal["invoice"] = "invoice"
    id: str
    number: str = Field(description="Consecutive within the organization, without gaps.")
    sequence: int = Field(description="The number as an integer: 1, 2, 3, ...")
    organization: str
    customer: str
    subscription: str | None = Field(description="None for a credit purchase.")
    kind: str = Field(description="The charge: first_period, renewal, final_invoice, topup, "
                      "auto_recharge, ...")
    status: InvoiceStatus
    currency: str
    total: int = Field(description="Minor units (cents).")
    amount_paid: int
    amount_due: int = Field(description="What is still owed (open or uncollectible); 0 once "
                            "paid or void.")
    lines: list[InvoiceLine]
    payment_intent: str | None = None
    created: datetime
    paid_at: datetime | None = None
    closed_at: datetime | None = Field(default=None, description="When it became void or "
                                       "uncollectible.")
    pdf: str

    @classmethod
    def from_record(cls, r: InvoiceRecord) -> InvoiceResource:
        return cls(id=r.id, number=r.display_number, sequence=r.number,
                   organization=r.organization_id, customer=r.customer_id,
                   subscription=r.subscription_id or None, kind=r.kind, status=r.status,
                   currency=r.currency, total=r.total, amount_paid=r.amount_paid,
                   amount_due=(r.total - r.amount_paid
                               if r.status in ("open", "uncollectible") else 0),
                   lines=r.lines, payment_intent=r.payment_intent_id, created=r.created_at,
                   paid_at=r.paid_at, closed_at=r.closed_at, pdf=f"/v1/invoices/{r.id}/pdf")


class InvoiceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[InvoiceResource]
    has_more: bool = Field(description="More items follow; pass the last id as starting_after.")
    url: str = "/v1/invoices"
