"""The durable record of D8 events. Event ids are deterministic (evt_<subscription>_<seq>), so a
retried activity inserts each event exactly once. Events are kept for
``SUBS_EVENTS__RETENTION`` (eventlog.retention prunes older ones)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, SQLModel


class SubscriptionEventRow(SQLModel, table=True):
    __tablename__ = "subscription_event"
    __table_args__ = (Index("ix_subscription_event_sub_seq", "subscription_id", "seq"),
                      # GET /v1/events and replays: one organization's events in time order.
                      Index("ix_subscription_event_org_created", "organization_id", "created",
                            "id"),
                      # retention: the oldest events of every organization.
                      Index("ix_subscription_event_created", "created"))

    id: str = Field(primary_key=True, max_length=128)
    subscription_id: str = Field(max_length=64)
    # Came with retention and replay (0009_event_organization); filled in for older rows.
    organization_id: str = Field(max_length=64)
    customer_id: str = Field(max_length=64, index=True)
    seq: int
    type: str = Field(max_length=64)
    created: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    request_actor_kind: str | None = Field(default=None, max_length=32)
    request_actor_id: str | None = Field(default=None, max_length=128)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    previous_attributes: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class SubscriptionView(SQLModel, table=True):
    """The read model the API lists and filters: each event's subscription snapshot, newest
    sequence wins. Temporal search attributes serve the UI; this serves SQL filters and works
    on servers without visibility (the time-skipping test server). It holds every fact the
    subscription resource shows, so a list item equals the subscription read alone; the
    columns after ``ended_at`` came later (0008_view_facts) and are null in rows whose last
    event predates them. Nested objects are stored as the snapshot carries them (JSON)."""

    __tablename__ = "subscription_view"
    __table_args__ = (Index("ix_subscription_view_org_status", "organization_id", "status"),)

    id: str = Field(primary_key=True, max_length=64)
    organization_id: str = Field(max_length=64)
    customer_id: str = Field(max_length=64, index=True)
    plan_id: str = Field(max_length=64)
    status: str = Field(max_length=32)
    current_period_start: datetime = Field(sa_column=Column(DateTime(timezone=True),
                                                            nullable=False))
    current_period_end: datetime = Field(sa_column=Column(DateTime(timezone=True),
                                                          nullable=False))
    cancel_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    last_event_seq: int = 0
    created: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    start_date: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    billing_cycle_anchor: datetime | None = Field(default=None,
                                                  sa_column=Column(DateTime(timezone=True)))
    trial_end: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    cancellation_details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    pause_collection: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    pending_plan_id: str | None = Field(default=None, max_length=64)
    discount: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    renewal_line: str | None = Field(default=None, max_length=128)
    renewal_date: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    # D9: past due keeps access until then (null in any other status).
    grace_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    hold: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
