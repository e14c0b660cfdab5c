"""credit ledger: accounts, append-only entries (grants are lots), allocations

Revision ID: 0001_ledger
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = ("ledger",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credit_account",
        sa.Column("customer_id", sa.String(length=64), primary_key=True),
    )
    op.create_table(
        "credit_entry",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String(length=64),
                  sa.ForeignKey("credit_account.customer_id"), nullable=False),
        sa.Column("entry_type", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("shortfall", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("credit_kind", sa.String(length=16), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscription_id", sa.String(length=64), nullable=True),
        sa.Column("period_key", sa.String(length=64), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_credit_entry_idempotency_key"),
        sa.CheckConstraint("amount >= 0", name="ck_credit_entry_amount"),
        sa.CheckConstraint("shortfall >= 0 AND shortfall <= amount",
                           name="ck_credit_entry_shortfall"),
    )
    op.create_index("ix_credit_entry_customer_type", "credit_entry",
                    ["customer_id", "entry_type"])
    op.create_table(
        "credit_allocation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entry_id", sa.Integer(), sa.ForeignKey("credit_entry.id"), nullable=False),
        sa.Column("lot_id", sa.Integer(), sa.ForeignKey("credit_entry.id"), nullable=False),
        sa.Column("pays_entry_id", sa.Integer(), sa.ForeignKey("credit_entry.id"),
                  nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount > 0", name="ck_credit_allocation_amount"),
    )
    op.create_index("ix_credit_allocation_entry_id", "credit_allocation", ["entry_id"])
    op.create_index("ix_credit_allocation_lot_id", "credit_allocation", ["lot_id"])
    op.create_index("ix_credit_allocation_pays_entry_id", "credit_allocation",
                    ["pays_entry_id"])


def downgrade() -> None:
    op.drop_table("credit_allocation")
    op.drop_table("credit_entry")
    op.drop_table("credit_account")
