"""stripe_rate_limit: one Stripe request budget for every process (payments.shared_rate_limit)

Revision ID: 0007_stripe_rate_limit
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_stripe_rate_limit"
down_revision = None
branch_labels = ("stripe_rate_limit",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_rate_limit",
        sa.Column("account", sa.String(length=64), primary_key=True),
        sa.Column("next_free_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stripe_rate_limit")
