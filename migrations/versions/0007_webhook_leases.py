"""webhooks: claims are leases (a dead handler's event is taken over by the next delivery)

Revision ID: 0007_webhook_leases
Revises: 0005_webhooks
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_webhook_leases"
down_revision = "0005_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows claimed before this revision and never finished get no lease: the next delivery of
    # such an event (lost until now) takes it over.
    with op.batch_alter_table("stripe_webhook_event") as table:
        table.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("attempts", sa.Integer(), nullable=False,
                                   server_default="1"))
        table.add_column(sa.Column("adopted_payment_method", sa.String(length=255),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stripe_webhook_event") as table:
        table.drop_column("adopted_payment_method")
        table.drop_column("attempts")
        table.drop_column("lease_until")
