"""notifications: webhook replay requests, and the outbox rows they queue; an endpoint's
deliveries by status (dead ones are retried by hand)

Revision ID: 0009_webhook_replays
Revises: 0006_notifications
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_webhook_replays"
down_revision = "0006_notifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notification_outbox") as table:
        table.add_column(sa.Column("replay_id", sa.String(length=64), nullable=True))
    op.create_index("ix_notification_outbox_recipient", "notification_outbox",
                    ["recipient", "status"])
    op.create_index("ix_notification_outbox_replay_id", "notification_outbox", ["replay_id"])
    op.create_table(
        "webhook_replay",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("endpoint_id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("created_gte", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_lt", sa.DateTime(timezone=True), nullable=False),
        sa.Column("types", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("cursor_created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_id", sa.String(length=128), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("endpoint_id", "idempotency_key", name="uq_webhook_replay_key"),
    )
    op.create_index("ix_webhook_replay_status", "webhook_replay", ["status", "created"])


def downgrade() -> None:
    op.drop_table("webhook_replay")
    op.drop_index("ix_notification_outbox_replay_id", table_name="notification_outbox")
    op.drop_index("ix_notification_outbox_recipient", table_name="notification_outbox")
    with op.batch_alter_table("notification_outbox") as table:
        table.drop_column("replay_id")
