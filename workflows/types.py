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
    # Set by continue-as-new from a run that batched its local writes (PATCH_BATCHED_EFFECTS):
    # the next run batches too without checking the patch again, which would cost a marker
    # and a TemporalChangeVersion search-attribute write on every renewal.
    batched: bool = False


class RejectedSignal(BaseModel):
    """A fire-and-forget request the rules refused; kept so operators can see why."""

    at: datetime
    kind: str
    code: str
    message: str
