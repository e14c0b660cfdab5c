"""Tables of the notifications component (migrations ``0006_notifications``,
``0009_webhook_replays``).

The outbox holds every message to deliver. Its ``dedupe_key`` ({event}:{channel}:{recipient})
is unique, so an event recorded twice can never queue a message twice; the dispatcher leases a
row (``next_attempt_at`` moves forward, ``claim_token`` names the holder) before sending it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from store.types import UTCDateTime, utcnow


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # dead: gave up after the last attempt (retried only by hand)
    SKIPPED = "skipped"  # no longer true when due (e.g. an ending notice after a reactivation)


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_due", "status", "next_attempt_at"),
                      # an endpoint's deliveries by status (dead ones, for a retry by hand)
                      Index("ix_notification_outbox_recipient", "recipient", "status"),
                      Index("ix_notification_outbox_replay_id", "replay_id"))

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(sa_column=Column(String(400), nullable=False, unique=True))
    event_id: str = Field(max_length=128)
    kind: str = Field(max_length=64)  # email kind (cancel_confirmation...) or "webhook"
    channel: str = Field(max_length=16)  # "email" | "webhook"
    recipient: str = Field(max_length=320)  # an email address or a webhook endpoint id
    subscription_id: str = Field(max_length=64)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default=OutboxStatus.PENDING.value, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    claim_token: str | None = Field(default=None, max_length=64)
    created: datetime = Field(default_factory=utcnow,
                              sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, max_length=1000)
    # A webhook resent by a replay request (0009_webhook_replays): that request's id.
    replay_id: str | None = Field(default=None, max_length=64)


class WebhookEndpoint(SQLModel, table=True):
    """Where an organization receives its D8 events, and the secret that signs them."""

    __tablename__ = "webhook_endpoint"

    id: str = Field(primary_key=True, max_length=64)
    organization_id: str = Field(max_length=64, index=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=128)
    description: str | None = Field(default=None, max_length=200)
    created: datetime = Field(default_factory=utcnow,
                              sa_column=Column(UTCDateTime(), nullable=False))


class ReplayStatus(StrEnum):
    PENDING = "pending"  # accepted; its events are being queued by the dispatcher
    QUEUED = "queued"  # every event of the range is in the outbox


class WebhookReplay(SQLModel, table=True):
    """A request to resend an endpoint's events of a time range (notifications/replays.py).
    The dispatcher queues them in batches; ``cursor_*`` is the last event queued so far and
    ``events`` how many. One per (endpoint, Idempotency-Key)."""

    __tablename__ = "webhook_replay"
    __table_args__ = (UniqueConstraint("endpoint_id", "idempotency_key",
                                       name="uq_webhook_replay_key"),
                      Index("ix_webhook_replay_status", "status", "created"))

    id: str = Field(primary_key=True, max_length=64)
    endpoint_id: str = Field(max_length=64)
    organization_id: str = Field(max_length=64)
    idempotency_key: str | None = Field(default=None, max_length=200)
    created_gte: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_lt: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=ReplayStatus.PENDING.value, max_length=16)
    events: int = 0
    cursor_created: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    cursor_id: str | None = Field(default=None, max_length=128)
    created: datetime = Field(default_factory=utcnow,
                              sa_column=Column(UTCDateTime(), nullable=False))
