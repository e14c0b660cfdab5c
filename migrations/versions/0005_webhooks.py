"""webhooks: Stripe events already processed (duplicate deliveries are no-ops)

Revision ID: 0005_webhooks
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_webhooks"
down_revision = None
branch_labels = ("webhooks",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_webhook_event",
        sa.Column("id", sa.String(length=255), primary_key=True),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=255), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("stripe_webhook_event")
