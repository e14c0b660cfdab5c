"""accounts: customer portal sessions (a single-use link, then a browser session)

Revision ID: 0009_portal_sessions
Revises: 0004_accounts
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_portal_sessions"
down_revision = "0004_accounts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_session",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("organization_id", sa.String(length=64), sa.ForeignKey("organization.id"),
                  nullable=False),
        sa.Column("customer_id", sa.String(length=64), sa.ForeignKey("customer.id"),
                  nullable=False),
        sa.Column("return_url", sa.String(length=2048), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("link_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("session_hash", sa.String(length=64), nullable=True, unique=True),
        sa.Column("session_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_portal_session_customer_id", "portal_session", ["customer_id"])


def downgrade() -> None:
    op.drop_table("portal_session")
