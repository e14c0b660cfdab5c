"""invoices: one numbered invoice per business charge, and the per-organization counter

Revision ID: 0009_invoices
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_invoices"
down_revision = None
branch_labels = ("invoices",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_counter",
        sa.Column("organization_id", sa.String(length=64), primary_key=True),
        sa.Column("last_number", sa.Integer(), nullable=False),
    )
    op.create_table(
        "invoice",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("period_key", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("charge_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key", name="uq_invoice_key"),
        sa.UniqueConstraint("organization_id", "number", name="uq_invoice_organization_number"),
        sa.CheckConstraint("total >= 0", name="ck_invoice_total"),
        sa.CheckConstraint("status IN ('open', 'paid', 'void', 'uncollectible')",
                           name="ck_invoice_status"),
    )
    op.create_index("ix_invoice_customer", "invoice", ["customer_id", "number"])
    op.create_index("ix_invoice_subscription_status", "invoice", ["subscription_id", "status"])


def downgrade() -> None:
    op.drop_table("invoice")
    op.drop_table("invoice_counter")
