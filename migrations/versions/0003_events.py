"""subscription events (D8) and the subscription read model

Revision ID: 0003_events
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_events"
down_revision = None
branch_labels = ("events",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription_event",
        sa.Column("id", sa.String(length=128), primary_key=True),
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_actor_kind", sa.String(length=32), nullable=True),
        sa.Column("request_actor_id", sa.String(length=128), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("previous_attributes", sa.JSON(), nullable=False),
    )
    op.create_index("ix_subscription_event_sub_seq", "subscription_event",
                    ["subscription_id", "seq"])
    op.create_index("ix_subscription_event_customer_id", "subscription_event", ["customer_id"])
    op.create_table(
        "subscription_view",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("current_period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancel_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_seq", sa.Integer(), nullable=False),
    )
    op.create_index("ix_subscription_view_org_status", "subscription_view",
                    ["organization_id", "status"])
    op.create_index("ix_subscription_view_customer_id", "subscription_view", ["customer_id"])


def downgrade() -> None:
    op.drop_table("subscription_view")
    op.drop_table("subscription_event")
