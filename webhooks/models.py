"""The table of Stripe events already processed (migration ``0005_webhooks``).

Stripe delivers an event at least once and in any order; the event id is the primary key, so a
second delivery finds its row and does nothing. ``created`` is Stripe's own timestamp, kept for
the audit trail (the handlers act on current facts, never on the order of arrival).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow


class StripeWebhookEvent(SQLModel, table=True):
    __tablename__ = "stripe_webhook_event"

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=128)
    created: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    received_at: datetime = Field(default_factory=utcnow,
                                  sa_column=Column(UTCDateTime(), nullable=False))
    # What the handler did ("handled", "ignored: <why>"), for whoever reads the audit trail.
    outcome: str | None = Field(default=None, max_length=255)
