"""subscription read model: every fact the subscription resource shows (list == get)

Revision ID: 0008_view_facts
Revises: 0003_events

Nullable: rows projected before this revision keep answering what they have until their
subscription's next event fills them in.
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_view_facts"
down_revision = "0003_events"
branch_labels = None
depends_on = None

_INSTANTS = ("created", "start_date", "billing_cycle_anchor", "trial_end", "renewal_date",
             "grace_until")
_OBJECTS = ("cancellation_details", "pause_collection", "discount", "hold")


def upgrade() -> None:
    with op.batch_alter_table("subscription_view") as table:
        for name in _INSTANTS:
            table.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        for name in _OBJECTS:
            table.add_column(sa.Column(name, sa.JSON(), nullable=True))
        table.add_column(sa.Column("pending_plan_id", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("renewal_line", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription_view") as table:
        for name in (*_INSTANTS, *_OBJECTS, "pending_plan_id", "renewal_line"):
            table.drop_column(name)
