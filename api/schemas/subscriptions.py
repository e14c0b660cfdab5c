"""The subscription resource and the bodies of subscription requests.

A resource is rendered from the workflow's live state (one subscription) or from the SQL read
model (lists), which stores the same facts (the event snapshot), so both answer alike. The D2
portal line and its date come from the core's ``renewal``, so the API, the CLI and the Web UI
say "Renewing on"/"Cancelling on" with the same date.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.model import (
    CancelMode,
    access,
    PauseMode,
    RefundMode,
    ResumeAnchor,
    Status,
    SubscriptionState,
)
from domain.requests import FEEDBACK
from eventlog.models import SubscriptionView

_EXAMPLE_END = "2026-12-24T10:00:00+00:00"


class Renewal(BaseModel):
    """D2: what the customer portal says about the next date."""

    line: str | None = Field(description='"Renewing on <date>" or, once a cancellation is '
                             'scheduled, "Cancelling on <date>" with the same date; '
                             '"Trial ends on", "Starts on"; null once ended.',
                             examples=[f"Cancelling on {_EXAMPLE_END}"])
    date: datetime | None = Field(examples=[_EXAMPLE_END])

    @classmethod
    def of(cls, state: SubscriptionState) -> Renewal:
        """From the core's structured ``renewal`` (the line is its display text)."""
        renewal = state.renewal
        return cls(line=state.renewal_line, date=None if renewal is None else renewal[1])


class Requester(BaseModel):
    kind: str = Field(examples=["api_key"])
    id: str | None = Field(default=None, examples=["key_3Hd8sKq0LmN2pQrS"])


class CancellationDetails(BaseModel):
    mode: CancelMode
    reason: str = Field(examples=["cancellation_requested"])
    feedback: str | None = None
    comment: str | None = None
    refund: RefundMode = "none"
    requested_by: Requester | None = None


class PauseCollection(BaseModel):
    """D12: a scheduled or current pause (Stripe's field name)."""

    mode: PauseMode
    paused_at: datetime = Field(description="When the pause takes (or took) effect.")
    resumes_at: datetime | None = Field(default=None, description="Automatic resume; null "
                                        "until a resume request.")


class SubscriptionDiscount(BaseModel):
    percent_off: int
    periods_left: int


class SubscriptionHold(BaseModel):
    """What an integrator may show; the details (message, Stripe request id) are for
    operators (`subs held`, the Web UI)."""

    code: str = Field(examples=["stripe_authentication"])
    since: datetime
    call: str = Field(examples=["charge"])


class SubscriptionResource(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "sub_4fT9kQ2mZx8LpR1a", "object": "subscription",
        "customer": "cus_8sKd92LmQpXz0aBc", "organization": "org_Q1w2E3r4T5y6U7i8",
        "plan": "pro-monthly", "status": "non_renewing",
        "current_period_start": "2026-11-24T10:00:00+00:00",
        "current_period_end": _EXAMPLE_END, "cancel_at": _EXAMPLE_END,
        "cancel_at_period_end": True, "canceled_at": "2026-11-30T08:12:00+00:00",
        "ended_at": None, "has_access": True,
        "renewal": {"line": f"Cancelling on {_EXAMPLE_END}", "date": _EXAMPLE_END},
    }]})

    id: str
    object: Literal["subscription"] = "subscription"
    customer: str
    organization: str
    plan: str = Field(description="Plan id in the catalog (GET /v1/plans).")
    status: Status
    created: datetime | None = None
    start_date: datetime | None = None
    billing_cycle_anchor: datetime | None = None
    trial_end: datetime | None = None
    current_period_start: datetime
    current_period_end: datetime
    cancel_at: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    cancellation_details: CancellationDetails | None = None
    pause_collection: PauseCollection | None = None
    pending_plan: str | None = Field(default=None, description=(
        "Plan id taking effect at the next renewal (a plan change at period end)."))
    discount: SubscriptionDiscount | None = Field(default=None, description=(
        "D14: an accepted retention offer and the discounted periods still to come."))
    has_access: bool = Field(description="Paid features are available now (D2, D9 grace).")
    renewal: Renewal
    hold: SubscriptionHold | None = Field(default=None, description=(
        "Set while the subscription waits for an operator (docs/failures.md): a Stripe or "
        "database call failed in a way retrying alone cannot fix. Nothing renews or retries "
        "until then; the customer keeps their access."))

    @classmethod
    def from_state(cls, state: SubscriptionState, now: datetime) -> SubscriptionResource:
        c = state.cancellation
        details = None if c is None else CancellationDetails(
            mode=c.mode, reason=c.reason, feedback=c.feedback, comment=c.comment,
            refund=c.refund, requested_by=Requester(kind=c.requested_by.kind,
                                                    id=c.requested_by.id))
        return cls(
            id=state.id, customer=state.customer_id, organization=state.organization_id,
            plan=state.plan.id, status=state.status, created=state.created,
            start_date=state.start_date, billing_cycle_anchor=state.billing_cycle_anchor,
            trial_end=state.trial_end, current_period_start=state.current_period_start,
            current_period_end=state.current_period_end, cancel_at=state.cancel_at,
            cancel_at_period_end=state.cancel_at_period_end, canceled_at=state.canceled_at,
            ended_at=state.ended_at, cancellation_details=details,
            pause_collection=None if state.pause is None else PauseCollection(
                mode=state.pause.mode, paused_at=state.pause.paused_at,
                resumes_at=state.pause.resume_at),
            pending_plan=state.pending_plan.id if state.pending_plan else None,
            discount=None if state.discount is None else SubscriptionDiscount(
                percent_off=state.discount.offer.percent_off,
                periods_left=state.discount.periods_left),
            has_access=state.has_access(now), renewal=Renewal.of(state),
            hold=None if state.hold is None else SubscriptionHold(
                code=state.hold.code, since=state.hold.since, call=state.hold.activity))

    @classmethod
    def from_view(cls, view: SubscriptionView, now: datetime) -> SubscriptionResource:
        """A list item from the read model's own columns: the same facts ``from_state`` reads
        (the snapshot every event carries), so a list item equals the subscription read alone.
        A row whose last event predates a fact answers null for it."""
        status = Status(view.status)
        return cls(
            id=view.id, customer=view.customer_id, organization=view.organization_id,
            plan=view.plan_id, status=status, created=view.created,
            start_date=view.start_date, billing_cycle_anchor=view.billing_cycle_anchor,
            trial_end=view.trial_end, current_period_start=view.current_period_start,
            current_period_end=view.current_period_end, cancel_at=view.cancel_at,
            cancel_at_period_end=view.cancel_at_period_end, canceled_at=view.canceled_at,
            ended_at=view.ended_at, cancellation_details=view.cancellation_details,
            pause_collection=view.pause_collection, pending_plan=view.pending_plan_id,
            discount=view.discount,
            has_access=access(status, view.grace_until, now),
            renewal=Renewal(line=view.renewal_line, date=view.renewal_date),
            hold=view.hold)


class SubscriptionList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SubscriptionResource]
    has_more: bool = Field(description="More items follow; pass the last id as starting_after.")
    url: str = "/v1/subscriptions"


class CreateSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"customer": "cus_8sKd92LmQpXz0aBc", "plan": "pro-monthly"},
        {"customer": "cus_8sKd92LmQpXz0aBc", "plan": "pro-monthly",
         "trial_end": "2026-12-24T10:00:00Z"},
    ]})

    customer: str = Field(min_length=1, max_length=64)
    plan: str = Field(min_length=1, max_length=64)
    start_date: AwareDatetime | None = Field(
        default=None, description="A future start makes the subscription `scheduled` (D10).")
    trial_end: AwareDatetime | None = Field(
        default=None, description="D4: resubscribe with trial_end at the old renewal date to "
        "keep the billing anchor and not bill twice.")


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"mode": "at_period_end", "feedback": "too_expensive"},
        {"mode": "immediately", "refund": "prorated"},
        {"mode": "at_date", "cancel_at": "2027-01-31T00:00:00Z"},
    ]})

    mode: CancelMode = Field(default="at_period_end", description=(
        "immediately: ends now (D6); at_period_end: keeps access until the paid-through date "
        "(D2); at_date: ends at cancel_at."))
    cancel_at: AwareDatetime | None = Field(default=None,
                                            description="Required with mode at_date.")
    refund: RefundMode = Field(default="none", description=(
        "Refund of the current period's payment when the subscription ends: prorated pays back "
        "the unused share (immediately, or at_date inside the period)."))
    feedback: FEEDBACK | None = None
    reason: FEEDBACK | None = Field(default=None, description=(
        "Why the customer cancels: another name for `feedback` (give either, or the same "
        "value in both)."))
    comment: str | None = Field(default=None, max_length=500)

    @field_validator("reason")
    @classmethod
    def _same_as_feedback(cls, reason: str | None, info: ValidationInfo) -> str | None:
        feedback = info.data.get("feedback")
        if reason is not None and feedback is not None and reason != feedback:
            raise PydanticCustomError("reason_conflicts_with_feedback",
                                      "reason and feedback name the same thing; give one")
        return reason

    @property
    def customer_reason(self) -> str | None:
        return self.feedback or self.reason


class PostponeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"cancel_at": "2027-01-31T00:00:00Z"}]})

    cancel_at: AwareDatetime = Field(description="The new end; past the paid-through date the "
                                     "extra time is not charged (D5).")


class PauseBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"mode": "at_period_end"},
        {"mode": "now", "resume_at": "2027-01-31T00:00:00Z"},
    ]})

    mode: PauseMode = Field(default="at_period_end", description=(
        "now: access and renewals stop at once (the paid period's credits last until its "
        "end); at_period_end: the subscription pauses at the paid-through date (D12)."))
    resume_at: AwareDatetime | None = Field(default=None, description=(
        "Resume automatically then (anchor kept); it must be after the pause takes effect."))


class ChangePlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"plan": "pro-yearly"}]})

    plan: str = Field(min_length=1, max_length=64, description=(
        "Plan id in the catalog (GET /v1/plans). An upgrade (same term, higher price) takes "
        "effect now with a prorated charge; any other change at the next renewal."))
    proration_date: datetime | None = Field(default=None, description=(
        "The `at` of a preview (GET .../change_plan/preview): the upgrade is prorated from "
        "that instant, so the charge equals the preview. Within the last hour and the "
        "current period; default now."))


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"anchor": "keep"}, {"anchor": "reset"}]})

    anchor: ResumeAnchor = Field(default="keep", description=(
        "keep: renew on the original billing anchor; if the last paid period has ended, the "
        "period containing now is charged at once. reset: a new period, and anchor, start now "
        "and are charged at once."))


class EventResource(BaseModel):
    """A D8 event, shaped like Stripe's."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "evt_sub_4fT9kQ2mZx8LpR1a_000003", "object": "event",
        "type": "customer.subscription.updated", "created": "2026-11-30T08:12:00+00:00",
        "request": {"kind": "api_key", "id": "key_3Hd8sKq0LmN2pQrS"},
        "data": {"object": {"id": "sub_4fT9kQ2mZx8LpR1a", "status": "non_renewing"},
                 "previous_attributes": {"status": "active", "cancel_at": None}},
    }]})

    id: str
    object: Literal["event"] = "event"
    type: str
    created: datetime
    request: Requester | None
    data: dict


class EventList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EventResource]
    has_more: bool
