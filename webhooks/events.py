"""The envelope of a Stripe event, validated after its signature (a signed payload can still
be a shape we do not know; that is a 422 naming the field, never a 500)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


class StripeEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=255)
    type: str = Field(min_length=1, max_length=128)
    created: int = Field(ge=0, le=2**40)
    data: EventData

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.created, UTC)

    @property
    def object(self) -> dict[str, Any]:
        return self.data.object
