"""Tables of the payments component (migration ``0002_payments``).

Every row that stands for money moving is unique by an ``idempotency_key`` derived from business
facts, so a retried activity finds the row of its first attempt instead of acting again:

- ``stripe_customer``: our customer id -> Stripe customer and default payment method.
- ``charge_attempt``: one charge (one PaymentIntent). ``payment_intent_id`` is stored *before*
  the intent is confirmed; that is what makes charging exactly-once (see payments.service).
- ``payment_refund``: one refund of (part of) a PaymentIntent; ``lease_until`` serialises
  concurrent attempts of the same key, because a refund cannot be created unconfirmed.
- ``pending_charge``: one-off items "to be collected at end of term" and metered usage,
  collected into a final charge (D7) or discarded (D6, metered only).
- ``stripe_rate_limit`` (its own migration branch, ``0007_stripe_rate_limit``): the
  deployment's Stripe request budget, one row per Stripe account (payments.shared_rate_limit).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow


def _created() -> Column:
    return Column(UTCDateTime(), nullable=False)


CHARGE_STATUSES = ("pending", "succeeded", "declined")
REFUND_STATUSES = ("pending", "succeeded", "failed")
PENDING_KINDS = ("one_off", "metered")
PENDING_STATUSES = ("pending", "collected", "discarded")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class StripeCustomer(SQLModel, table=True):
    __tablename__ = "stripe_customer"
    __table_args__ = (
        UniqueConstraint("stripe_customer_id", name="uq_stripe_customer_stripe_customer_id"),
    )

    customer_id: str = Field(primary_key=True, max_length=64)
    stripe_customer_id: str = Field(max_length=255)
    default_payment_method: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_created())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_created())


class ChargeAttempt(SQLModel, table=True):
    __tablename__ = "charge_attempt"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_charge_attempt_idempotency_key"),
        Index("ix_charge_attempt_subscription_status", "subscription_id", "status"),
        Index("ix_charge_attempt_payment_intent_id", "payment_intent_id"),
        CheckConstraint("amount >= 0", name="ck_charge_attempt_amount"),
        CheckConstraint(_in("status", CHARGE_STATUSES), name="ck_charge_attempt_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255)
    subscription_id: str = Field(max_length=64)
    customer_id: str = Field(max_length=64)
    stripe_customer_id: str | None = Field(default=None, max_length=255)
    payment_method_id: str | None = Field(default=None, max_length=255)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=8)
    purpose: str = Field(max_length=32)
    period_key: str = Field(max_length=64)
    description: str | None = Field(default=None, sa_column=Column(Text))
    payment_intent_id: str | None = Field(default=None, max_length=255)
    status: str = Field(default="pending", max_length=16)
    decline_code: str | None = Field(default=None, max_length=64)
    message: str | None = Field(default=None, sa_column=Column(Text))
    # Set once close_open_charges (D6) has made sure the intent can never be paid.
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_created())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_created())


class Refund(SQLModel, table=True):
    __tablename__ = "payment_refund"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_payment_refund_idempotency_key"),
        Index("ix_payment_refund_payment_intent_id", "payment_intent_id"),
        CheckConstraint("amount > 0", name="ck_payment_refund_amount"),
        CheckConstraint(_in("status", REFUND_STATUSES), name="ck_payment_refund_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255)
    subscription_id: str = Field(max_length=64)
    payment_intent_id: str = Field(max_length=255)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    stripe_refund_id: str | None = Field(default=None, max_length=255)
    status: str = Field(default="pending", max_length=16)
    message: str | None = Field(default=None, sa_column=Column(Text))
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_created())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_created())


class PendingCharge(SQLModel, table=True):
    __tablename__ = "pending_charge"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_pending_charge_idempotency_key"),
        Index("ix_pending_charge_subscription_status", "subscription_id", "status"),
        Index("ix_pending_charge_resolution_key", "resolution_key"),
        CheckConstraint("amount >= 0", name="ck_pending_charge_amount"),
        CheckConstraint(_in("kind", PENDING_KINDS), name="ck_pending_charge_kind"),
        CheckConstraint(_in("status", PENDING_STATUSES), name="ck_pending_charge_status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=255)
    subscription_id: str = Field(max_length=64)
    customer_id: str = Field(max_length=64)
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=8)
    description: str | None = Field(default=None, sa_column=Column(Text))
    kind: str = Field(max_length=16)
    status: str = Field(default="pending", max_length=16)
    # The collect/discard request that resolved the item: a retried request finds its items.
    resolution_key: str | None = Field(default=None, sa_column=Column(String(255)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_created())
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class StripeRateLimit(SQLModel, table=True):
    """When the next Stripe request of an account may be sent, for every process at once."""

    __tablename__ = "stripe_rate_limit"

    # sha256 of the API key (hex): the row names the account without holding the secret.
    account: str = Field(primary_key=True, max_length=64)
    # Microseconds since the Unix epoch on the database's clock.
    next_free_us: int = Field(sa_column=Column(BigInteger, nullable=False))
