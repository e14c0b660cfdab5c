"""The table of Stripe events received (migrations ``0005_webhooks``, ``0007_webhook_leases``).

Stripe delivers an event at least once and in any order; the event id is the primary key, so
every delivery of one event meets the same row. A row is either finished (``outcome`` set: done
for good, redeliveries are duplicates) or claimed until ``lease_until`` by the delivery that is
handling it; a lease that runs out means its holder died, and the next delivery takes it over.
``created`` is Stripe's own timestamp, kept for the audit trail (the handlers act on current
facts, never on the order of arrival).
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
    # Until when the current delivery holds the event (None: nobody; finished or released).
    lease_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # Deliveries that claimed it: 1, then one more per takeover. A holder is (id, attempts).
    attempts: int = Field(default=1)
    # The default payment method this event recorded (in adopt_default's transaction), so a
    # takeover still owes, and re-does, the retry the dead holder may not have delivered.
    adopted_payment_method: str | None = Field(default=None, max_length=255)
