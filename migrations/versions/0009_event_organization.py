"""events: the organization on each event, and time indexes (GET /v1/events, replay, retention)

Revision ID: 0009_event_organization
Revises: 0008_view_facts

Rows stored before take their subscription's organization from the read model (every event is
projected in its own transaction, so each has a view row); failing that, the customer, as the
read model did for events without an organization.
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_event_organization"
down_revision = "0008_view_facts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription_event") as table:
        table.add_column(sa.Column("organization_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE subscription_event SET organization_id = COALESCE("
        "(SELECT v.organization_id FROM subscription_view v"
        " WHERE v.id = subscription_event.subscription_id), customer_id)")
    with op.batch_alter_table("subscription_event") as table:
        table.alter_column("organization_id", existing_type=sa.String(length=64),
                           nullable=False)
    op.create_index("ix_subscription_event_org_created", "subscription_event",
                    ["organization_id", "created", "id"])
    op.create_index("ix_subscription_event_created", "subscription_event", ["created"])


def downgrade() -> None:
    op.drop_index("ix_subscription_event_created", table_name="subscription_event")
    op.drop_index("ix_subscription_event_org_created", table_name="subscription_event")
    with op.batch_alter_table("subscription_event") as table:
        table.drop_column("organization_id")
