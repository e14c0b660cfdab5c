"""Workflow input and the answers of its queries and updates."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from domain.lifecycle import NewSubscription
from domain.model import SubscriptionState
from ledger.results import EntryResult


class SubscriptionInput(BaseModel):
    """Either a new subscription (first run) or the state carried by continue-as-new."""

    new: NewSubscription | None = None
    state: SubscriptionState | None = None
    # Set by continue-as-new from a run that batched its local writes (PATCH_BATCHED_EFFECTS):
    # the next run batches too without checking the patch again, which would cost a marker
    # and a TemporalChangeVersion search-attribute write on every renewal.
    batched: bool = False
    # What the CustomerId search attribute holds instead of the customer id when payloads are
    # encrypted (workflows.codec.AesGcmCodec.index): search attributes are stored in clear.
    customer_index: str | None = None


class RejectedSignal(BaseModel):
    """A fire-and-forget request the rules refused; kept so operators can see why."""

    at: datetime
    kind: str
    code: str
    message: str


class PurchaseResult(BaseModel):
    """How a credit purchase (workflows.credit_purchase) ended; every end is final for its key.

    - ``credited``: charged and granted (``entry`` is the ledger's purchase entry);
    - ``declined``: the card was declined, nothing was charged or granted;
    - ``failed``: the payment provider refused the request for a reason a retry cannot fix
      by itself (bad key, invalid request, idempotency key reused), at ``stage`` "charge"; or
      the grant was refused (stage "credit", the charge succeeded: the reconciliation job
      reports it). ``error_type`` is the error class, never the provider's text.
    """

    status: Literal["credited", "declined", "failed"]
    idempotency_key: str
    credits: int
    payment_intent_id: str | None = None
    entry: EntryResult | None = None
    decline_code: str | None = None
    message: str | None = None  # the decline's reason
    stage: Literal["charge", "credit"] | None = None
    error_type: str | None = None
    http_status: int | None = None
