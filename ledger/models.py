"""The credit ledger's tables. Entries and allocations are append-only: nothing is ever updated
or deleted, so every balance is a sum over rows and any past result can be re-read exactly.

- ``credit_account``: one row per customer, the target of the row lock that serializes all
  writes to that customer's credits (and the parent every entry must have).
- ``credit_entry``: one row per operation, unique by ``idempotency_key``. A ``grant`` entry
  is a *lot* (credit_kind, valid from ``occurred_at`` until ``expires_at``); the other types
  are forfeit, debit, usage, settle, lock and unlock.
- ``credit_allocation``: ``amount`` credits taken from lot ``lot_id`` by entry ``entry_id``,
  paying for the debit/usage entry ``pays_entry_id`` (NULL for a forfeit).

A lot's remaining credits = its amount minus its allocations; a usage entry's outstanding
credits = its amount minus the allocations paying it. Expiry is not written: a lot past its
``expires_at`` simply stops counting (evaluated at an explicit instant by domain.credits).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import StrictUTCDateTime


class CreditAccount(SQLModel, table=True):
    __tablename__ = "credit_account"

    customer_id: str = Field(primary_key=True, max_length=64)


class CreditEntry(SQLModel, table=True):
    __tablename__ = "credit_entry"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_credit_entry_idempotency_key"),
        Index("ix_credit_entry_customer_type", "customer_id", "entry_type"),
        CheckConstraint("amount >= 0", name="ck_credit_entry_amount"),
        CheckConstraint("shortfall >= 0 AND shortfall <= amount", name="ck_credit_entry_shortfall"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=64, foreign_key="credit_account.customer_id")
    entry_type: str = Field(max_length=16)
    idempotency_key: str = Field(max_length=255)
    # grant: credits granted; debit/usage: credits asked for; forfeit/settle: credits moved.
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    # usage only: what could not be paid when it was recorded (an immutable fact; it is also
    # the cheap filter that finds candidate debts without scanning every usage entry).
    shortfall: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    occurred_at: datetime = Field(sa_column=Column(StrictUTCDateTime(), nullable=False))
    # Lots (grant entries) only.
    credit_kind: str | None = Field(default=None, max_length=16)
    expires_at: datetime | None = Field(default=None, sa_column=Column(StrictUTCDateTime()))
    subscription_id: str | None = Field(default=None, max_length=64)
    period_key: str | None = Field(default=None, max_length=64)


class CreditAllocation(SQLModel, table=True):
    __tablename__ = "credit_allocation"
    __table_args__ = (CheckConstraint("amount > 0", name="ck_credit_allocation_amount"),)

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="credit_entry.id", index=True)
    lot_id: int = Field(foreign_key="credit_entry.id", index=True)
    pays_entry_id: int | None = Field(default=None, foreign_key="credit_entry.id", index=True)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
