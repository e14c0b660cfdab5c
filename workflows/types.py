"""Workflow input and the answers of its queries and updates."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from domain.lifecycle import NewSubscription
from domain.model import SubscriptionState


class SubscriptionInput(BaseModel):
    """Either a new subscription (first run) or the state carried by continue-as-new."""

    new: NewSubscription | None = None
    state: SubscriptionState | None = None


class RejectedSignal(BaseModel):
    """A fire-and-forget request the rules refused; kept so operators can see why."""

    at: datetime
    kind: str
    code: str
    message: str
