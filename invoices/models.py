"""Tables of the invoices component (migration ``0009_invoices``).

- ``invoice``: one per business charge, unique by ``key`` (invoices.kinds: the retries of
  one period's charge share it) and by (organization, number).
- ``invoice_counter``: the last number given in each organization; the row is locked by the
  transaction that creates an invoice, so numbers are consecutive (invoices.numbering).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Integer, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow

STATUSES = ("open", "paid", "void", "uncollectible")


class Invoice(SQLModel, table=True):
    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("key", name="uq_invoice_key"),
        UniqueConstraint("organization_id", "number", name="uq_invoice_organization_number"),
        Index("ix_invoice_customer", "customer_id", "number"),
        Index("ix_invoice_subscription_status", "subscription_id", "status"),
        CheckConstraint("total >= 0", name="ck_invoice_total"),
        CheckConstraint("status IN ('open', 'paid', 'void', 'uncollectible')",
                        name="ck_invoice_status"),
    )

    id: str = Field(primary_key=True, max_length=64)  # in_<organization-free random part>
    key: str = Field(max_length=255)  # the business charge (invoices.kinds.invoice_key)
    organization_id: str = Field(max_length=64)
    number: int = Field(sa_column=Column(Integer, nullable=False))
    customer_id: str = Field(max_length=64)
    subscription_id: str = Field(default="", max_length=64)  # "" for a credit purchase
    kind: str = Field(max_length=32)  # the charge's purpose: renewal, topup, ...
    period_key: str = Field(max_length=64)
    currency: str = Field(max_length=8)
    total: int = Field(sa_column=Column(BigInteger, nullable=False))  # minor units
    amount_paid: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    status: str = Field(default="open", max_length=16)
    lines: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    payment_intent_id: str | None = Field(default=None, max_length=255)
    charge_key: str | None = Field(default=None, max_length=255)  # the attempt that paid
    created_at: datetime = Field(default_factory=utcnow,
                                 sa_column=Column(UTCDateTime(), nullable=False))
    paid_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class InvoiceCounter(SQLModel, table=True):
    __tablename__ = "invoice_counter"

    organization_id: str = Field(primary_key=True, max_length=64)
    last_number: int = Field(default=0, sa_column=Column(Integer, nullable=False))
