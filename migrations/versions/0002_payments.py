"""payments: stripe customers, charge attempts, refunds, pending charges

Revision ID: 0002_payments
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_payments"
down_revision = None
branch_labels = ("payments",)
depends_on = None


def _timestamps(*names: str, nullable: bool = False) -> list[sa.Column]:
    return [sa.Column(n, sa.DateTime(timezone=True), nullable=nullable) for n in names]


def upgrade() -> None:
    op.create_table(
        "stripe_customer",
        sa.Column("customer_id", sa.String(length=64), primary_key=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=False),
        sa.Column("default_payment_method", sa.String(length=255), nullable=True),
        *_timestamps("created_at", "updated_at"),
        sa.UniqueConstraint("stripe_customer_id", name="uq_stripe_customer_stripe_customer_id"),
    )
    op.create_table(
        "charge_attempt",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("period_key", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decline_code", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        *_timestamps("closed_at", nullable=True),
        *_timestamps("created_at", "updated_at"),
        sa.UniqueConstraint("idempotency_key", name="uq_charge_attempt_idempotency_key"),
        sa.CheckConstraint("amount >= 0", name="ck_charge_attempt_amount"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'declined')",
                           name="ck_charge_attempt_status"),
    )
    op.create_index("ix_charge_attempt_subscription_status", "charge_attempt",
                    ["subscription_id", "status"])
    op.create_index("ix_charge_attempt_payment_intent_id", "charge_attempt",
                    ["payment_intent_id"])
    op.create_table(
        "payment_refund",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("stripe_refund_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        *_timestamps("lease_until", nullable=True),
        *_timestamps("created_at", "updated_at"),
        sa.UniqueConstraint("idempotency_key", name="uq_payment_refund_idempotency_key"),
        sa.CheckConstraint("amount > 0", name="ck_payment_refund_amount"),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')",
                           name="ck_payment_refund_status"),
    )
    op.create_index("ix_payment_refund_payment_intent_id", "payment_refund",
                    ["payment_intent_id"])
    op.create_table(
        "pending_charge",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution_key", sa.String(length=255), nullable=True),
        *_timestamps("created_at"),
        *_timestamps("resolved_at", nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_pending_charge_idempotency_key"),
        sa.CheckConstraint("amount >= 0", name="ck_pending_charge_amount"),
        sa.CheckConstraint("kind IN ('one_off', 'metered')", name="ck_pending_charge_kind"),
        sa.CheckConstraint("status IN ('pending', 'collected', 'discarded')",
                           name="ck_pending_charge_status"),
    )
    op.create_index("ix_pending_charge_subscription_status", "pending_charge",
                    ["subscription_id", "status"])
    op.create_index("ix_pending_charge_resolution_key", "pending_charge", ["resolution_key"])


def downgrade() -> None:
    op.drop_table("pending_charge")
    op.drop_table("payment_refund")
    op.drop_table("charge_attempt")
    op.drop_table("stripe_customer")
