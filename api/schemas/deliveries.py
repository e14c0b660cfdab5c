"""Webhook deliveries and replay requests, as the API shows them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from notifications.models import OutboxMessage, WebhookReplay
from notifications.replays import ReplayProgress

DeliveryStatus = Literal["pending", "sent", "failed", "skipped"]
TYPE = r"^[a-z_]+(\.[a-z_]+)*(\.\*)?$"


class ReplayRange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gte: AwareDatetime = Field(description="Events created at or after this instant.")
    lt: AwareDatetime | None = Field(default=None, description="...and before this one "
                                     "(default: now).")


class ReplayBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "created": {"gte": "2026-11-29T00:00:00Z", "lt": "2026-11-30T00:00:00Z"},
        "types": ["customer.subscription.deleted"]}]})

    created: ReplayRange
    types: list[str] = Field(default_factory=list, max_length=20, description=(
        "Only these types (a prefix ending in `.*` matches several); empty: every type."))

    @field_validator("types")
    @classmethod
    def _valid_types(cls, types: list[str]) -> list[str]:
        for t in types:
            if len(t) > 64 or not re.match(TYPE, t):
                raise ValueError(f"not an event type: {t!r}")
        return types


class ReplayResource(BaseModel):
    id: str
    object: Literal["webhook_replay"] = "webhook_replay"
    endpoint: str
    created: datetime
    range: dict[str, datetime] = Field(description="`gte` and `lt` of the replayed range.")
    types: list[str]
    status: Literal["pending", "queued"] = Field(description=(
        "`pending`: the events are being queued; `queued`: every event of the range is."))
    events: int = Field(description="Events queued so far (each is delivered once).")
    deliveries: dict[str, int] = Field(description="The replay's deliveries by status: "
                                       "`sent`, `pending`, `failed` (dead).")

    @classmethod
    def of(cls, replay: WebhookReplay, progress: ReplayProgress) -> ReplayResource:
        return cls(id=replay.id, endpoint=replay.endpoint_id, created=replay.created,
                   range={"gte": replay.created_gte, "lt": replay.created_lt},
                   types=replay.types, status=replay.status, events=replay.events,
                   deliveries={"sent": progress.sent, "pending": progress.pending,
                               "failed": progress.failed})


class DeliveryResource(BaseModel):
    id: int
    object: Literal["webhook_delivery"] = "webhook_delivery"
    endpoint: str
    event: str
    event_type: str | None = None
    replay: str | None = Field(default=None, description="The replay request that queued it.")
    status: DeliveryStatus = Field(description=(
        "`failed`: dead, given up after the last attempt; retry it by hand."))
    attempts: int
    next_attempt_at: datetime | None = Field(default=None, description="When pending.")
    last_error: str | None = None
    created: datetime
    sent_at: datetime | None = None

    @classmethod
    def of(cls, row: OutboxMessage) -> DeliveryResource:
        assert row.id is not None
        return cls(id=row.id, endpoint=row.recipient, event=row.event_id,
                   event_type=(row.payload.get("event") or {}).get("type"),
                   replay=row.replay_id, status=row.status, attempts=row.attempts,
                   next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
                   last_error=row.last_error, created=row.created, sent_at=row.sent_at)


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryResource]
    has_more: bool
