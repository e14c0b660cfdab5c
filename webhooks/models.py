"""The table of Stripe events already processed (migration ``0005_webhooks``).

Stripe delivers an event at least once and in any order; the event id is the primary key, so a
second delivery finds its row and does nothing. ``created`` is Stripe's own timestamp, kept for
the audit trail (the handlers act on current facts, never on the order of arrival).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Timezone-aware instants on SQLite too (it drops the offset): stored and read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class StripeWebhookEvent(SQLModel, table=True):
    __tablename__ = "stripe_webhook_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=128)
    created: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    received_at: datetime = Field(default_factory=utcnow,
                                  sa_column=Column(UTCDateTime(), nullable=False))
    # What the handler did ("handled", "ignored: <why>"), for whoever reads the audit trail.
    outcome: str | None = Field(default=None, max_length=255)
