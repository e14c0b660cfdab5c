"""What callers can ask of a subscription. The same models travel as Temporal signals, updates
and HTTP bodies, so every entry point goes through one code path."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from domain.model import Actor, CancelMode, Frozen, PauseMode, RefundMode, ResumeAnchor
from domain.periods import require_utc
from domain.plans import Plan


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else require_utc(value, "cancel_at")


UtcDatetime = Annotated[datetime, AfterValidator(lambda v: require_utc(v, "datetime"))]

FEEDBACK = Literal[
    "too_expensive",
    "missing_features",
    "switched_service",
    "unused",
    "customer_service",
    "too_complex",
    "low_quality",
    "other",
]


class Cancel(Frozen):
    kind: Literal["cancel"] = "cancel"
    mode: CancelMode = "at_period_end"
    cancel_at: Annotated[datetime | None, AfterValidator(_utc)] = None
    refund: RefundMode = "none"
    feedback: FEEDBACK | None = None
    comment: str | None = Field(default=None, max_length=500)
    requested_by: Actor = Actor()


class Reactivate(Frozen):
    kind: Literal["reactivate"] = "reactivate"
    requested_by: Actor = Actor()


class Postpone(Frozen):
    """Move a scheduled cancellation (Chargebee's "change term end", D5)."""

    kind: Literal["postpone"] = "postpone"
    cancel_at: UtcDatetime
    requested_by: Actor = Actor()


class PaymentMethodUpdated(Frozen):
    """A new default payment method: during dunning it triggers an immediate retry (D9)."""

    kind: Literal["payment_method_updated"] = "payment_method_updated"
    payment_method_id: str | None = None
    requested_by: Actor = Actor()


class Pause(Frozen):
    """D12: stop renewals and access, now or at the period end, until ``resume_at`` (if
    given) or a Resume request."""

    kind: Literal["pause"] = "pause"
    mode: PauseMode = "at_period_end"
    resume_at: Annotated[datetime | None, AfterValidator(
        lambda v: None if v is None else require_utc(v, "resume_at"))] = None
    requested_by: Actor = Actor()


class Resume(Frozen):
    """D12: end a pause (or remove a scheduled one). ``keep`` stays on the billing anchor;
    ``reset`` starts a new period, and anchor, now."""

    kind: Literal["resume"] = "resume"
    anchor: ResumeAnchor = "keep"
    requested_by: Actor = Actor()


class ChangePlan(Frozen):
    """Switch to ``plan``: at the next renewal, or (rule version 4) now for an upgrade, with
    a prorated charge (domain.proration). The caller resolves the full plan from the catalog:
    the subscription keeps a snapshot, never an id. A different term also removes a scheduled
    cancellation (D11). ``proration_date`` (a preview's ``at``) prorates from that instant,
    so the charge equals the preview the caller confirmed."""

    kind: Literal["change_plan"] = "change_plan"
    plan: Plan
    proration_date: Annotated[datetime | None, AfterValidator(
        lambda v: None if v is None else require_utc(v, "proration_date"))] = None
    requested_by: Actor = Actor()


class AcceptRetentionOffer(Frozen):
    """D14: take the retention offer instead of cancelling. A scheduled cancellation is
    removed; the next periods are charged at the reduced price. Once per subscription."""

    kind: Literal["accept_retention_offer"] = "accept_retention_offer"
    requested_by: Actor = Actor()


class Retry(Frozen):
    """An operator's go-ahead for a held subscription (see domain.model.Hold): the held call
    runs again with the same idempotency key, so what already succeeded is not repeated."""

    kind: Literal["retry"] = "retry"
    requested_by: Actor = Actor(kind="operator")


Request = Annotated[
    Cancel | Reactivate | Postpone | PaymentMethodUpdated | Pause | Resume | ChangePlan
    | AcceptRetentionOffer | Retry,
    Field(discriminator="kind")
]
