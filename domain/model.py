"""The subscription's state: one immutable value, with Stripe-compatible field names."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.periods import boundary, period_key
from domain.plans import Plan


class Status(StrEnum):
    SCHEDULED = "scheduled"  # starts in the future (D10)
    INCOMPLETE = "incomplete"  # the first payment is in flight or being retried: no access yet
    TRIALING = "trialing"
    ACTIVE = "active"
    NON_RENEWING = "non_renewing"  # a cancellation is scheduled; access continues (D2)
    PAST_DUE = "past_due"  # a renewal payment failed; dunning retries run (D9)
    UNPAID = "unpaid"  # dunning exhausted with final_action=unpaid: no access, no retries
    PAUSED = "paused"
    CANCELED = "canceled"  # ended: terminal (D4)


ENDED = frozenset({Status.CANCELED})
WITH_ACCESS = frozenset({Status.TRIALING, Status.ACTIVE, Status.NON_RENEWING})

CancelMode = Literal["immediately", "at_period_end", "at_date"]
RefundMode = Literal["none", "prorated", "full"]
PauseMode = Literal["now", "at_period_end"]
ResumeAnchor = Literal["keep", "reset"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Actor(Frozen):
    """Who asked for a change. ``system`` is the engine itself (timers, dunning)."""

    kind: Literal["customer", "operator", "system", "api_key"] = "customer"
    id: str | None = None


SYSTEM = Actor(kind="system", id=None)


class Cancellation(Frozen):
    """Why and by whom a cancellation was requested (Stripe's cancellation_details)."""

    mode: CancelMode
    reason: Literal[
        "cancellation_requested", "payment_failed", "payment_disputed"
    ] = "cancellation_requested"
    feedback: str | None = None  # a fixed reason code chosen by the customer (D14)
    comment: str | None = None
    requested_by: Actor = SYSTEM
    refund: RefundMode = "none"


class Pausing(Frozen):
    """A pause (D12): scheduled while the status is still ``active``, in effect once
    ``paused``. ``paid_credits_forfeited`` says whether the last paid period's subscription
    credits are gone (D15): at once for a pause at the period end, at that period's end for
    a pause ``now``."""

    seq: int  # the n-th pause of this subscription: keys its credit lock/unlock
    mode: PauseMode
    requested_by: Actor = SYSTEM
    requested_at: datetime
    paused_at: datetime  # when the pause takes (or took) effect
    resume_at: datetime | None = None
    paid_credits_forfeited: bool = False


class Dunning(Frozen):
    """The retry state of an unpaid period (D9). Rule version 3: after a hard decline
    (``requires="payment_method"``) or one needing the customer (``"authentication"``) nothing
    is retried on a schedule; the subscription waits for a new payment method until
    ``ends_at``, where the final action applies (domain.declines)."""

    period_key: str
    attempts: int  # failed attempts so far
    next_retry_at: datetime | None
    grace_until: datetime
    last_decline_code: str | None = None
    requires: Literal["payment_method", "authentication"] | None = None
    ends_at: datetime | None = None


class Hold(Frozen):
    """The subscription waits for an operator: a call failed in a way retrying cannot fix by
    itself (Stripe refused our key or request, an unknown error, or a call that kept failing
    past the alarm bound). Time stands still while held (no renewal, dunning retry or
    scheduled end fires) and the customer keeps the access they had: the fault is ours, not
    theirs. A Retry request issues the same call again, with the same idempotency key.

    ``charge_*`` describe the charge to issue again when the charge in flight was held (the
    core then handles cancel, reactivate and postpone meanwhile); without them the hold is
    in the middle of other work and the workflow itself waits for the Retry."""

    code: str  # stripe_authentication, stripe_permission, stripe_rejected, call_stalled, ...
    message: str
    activity: str
    since: datetime
    idempotency_key: str
    stripe_request_id: str | None = None
    charge_attempt: int | None = None
    charge_purpose: Literal["renewal", "first_period", "proration"] | None = None


class PlanUpgrade(Frozen):
    """Rule version 4: an upgrade whose prorated charge is in flight (or held). The plan
    changes only once that charge succeeds; a decline leaves the current plan in place.
    ``seq`` is the subscription's n-th mid-period change: it keys the charge and the grant."""

    seq: int
    plan: Plan
    amount: int  # the prorated charge (domain.proration.quote)
    credits: int  # extra subscription credits for the rest of the period (D15)
    at: datetime
    idempotency_key: str  # {subscription}:{period}:change{seq}:{plan}
    requested_by: Actor = SYSTEM
    # The instant the charge is prorated from (the confirmed preview's ``at``; None in a
    # state written before it was kept: ``at``).
    prorated_from: datetime | None = None


class PaidUpgrade(Frozen):
    """Rule version 4: an upgrade's prorated charge paid in the current period. It paid for
    [``covers_from``, period end), so an immediate cancellation refunds it like the period
    charge (D6, domain.refunds), under its own PaymentIntent."""

    seq: int
    amount: int  # minor units, as charged
    payment_intent_id: str | None = None  # None: nothing was charged (amount 0)
    covers_from: datetime


class RetentionOffer(Frozen):
    """D14: offered instead of cancelling: ``percent_off`` on the next ``periods`` charges."""

    percent_off: int = Field(ge=1, le=100)
    periods: int = Field(ge=1, le=36)

    def price(self, amount: int) -> int:
        """Minor units, rounded in the customer's favour."""
        return amount * (100 - self.percent_off) // 100


class Discount(Frozen):
    """An accepted retention offer: periods still to be charged at the reduced price."""

    offer: RetentionOffer
    periods_left: int


class BillingPolicy(Frozen):
    """Policies snapshotted into each subscription, so every worker decides the same way."""

    retry_delays: tuple[timedelta, ...] = (
        timedelta(days=3),
        timedelta(days=5),
        timedelta(days=7),
    )
    grace_period: timedelta = timedelta(days=5)
    final_action: Literal["cancel", "unpaid"] = "cancel"

    # D14: the retention step's offer (a discount on the next N periods), or None.
    retention_offer: RetentionOffer | None = None
    # A call still failing (retryably) after this long holds the subscription for an
    # operator, like a call that failed for good (see Hold).
    call_alarm_after: timedelta = timedelta(hours=1)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1


class Event(Frozen):
    """A D8 event, shaped like Stripe's: ``request`` is None when the change was automatic."""

    id: str
    type: str
    created: datetime
    request: Actor | None
    data: dict[str, Any]
    previous_attributes: dict[str, Any] = Field(default_factory=dict)


def access(status: Status, grace_until: datetime | None, now: datetime) -> bool:
    """Whether paid features are available: the statuses with access, and past_due until the
    grace period ends (D9). From the facts alone, so the read model answers as the state does."""
    if status in WITH_ACCESS:
        return True
    return status == Status.PAST_DUE and grace_until is not None and now < grace_until


class SubscriptionState(Frozen):
    """``rules`` is the version of the rules this subscription runs under
    (domain.lifecycle.RULES names each version's change). A state carried from code that did
    not know versions has none: it is version 1, the oldest rules."""

    id: str
    customer_id: str
    organization_id: str
    plan: Plan
    policy: BillingPolicy = BillingPolicy()
    status: Status
    created: datetime
    start_date: datetime
    billing_cycle_anchor: datetime
    trial_end: datetime | None = None
    period_index: int = 0
    current_period_start: datetime
    current_period_end: datetime
    current_period_paid: int = 0  # amount collected for the current period (refund basis)
    current_period_payment_intent: str | None = None
    cancel_at: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    cancellation: Cancellation | None = None
    dunning: Dunning | None = None
    # The charge in flight ({subscription}:{period}:{attempt}); its outcome is awaited.
    awaiting_charge: str | None = None
    # Waiting for an operator's Retry (see Hold); None otherwise.
    hold: Hold | None = None
    # D5: a cancellation postponed past the paid-through date gives an unpaid extension period.
    in_extension: bool = False
    # D12: a scheduled or current pause; ``pauses`` counts every pause ever taken.
    pause: Pausing | None = None
    pauses: int = 0
    # A plan change at period end: the next renewal charges this plan (None: no change).
    pending_plan: Plan | None = None
    # D14: an accepted retention offer; ``current_period_price`` is what this period costs
    # when it differs from the plan price (retries charge the same amount).
    discount: Discount | None = None
    retention_offer_used: bool = False
    current_period_price: int | None = None
    # Rule version 4: mid-period upgrades so far, and the one whose charge is in flight.
    plan_changes: int = 0
    upgrade: PlanUpgrade | None = None
    # ... and the ones paid in the current period (refund basis next to current_period_paid).
    current_period_upgrades: tuple[PaidUpgrade, ...] = ()
    event_seq: int = 0
    recent_events: tuple[Event, ...] = ()
    rules: int = 1

    # Derived views -------------------------------------------------------------------------
    @property
    def period_key(self) -> str:
        return period_key(self.current_period_start)

    @property
    def price(self) -> int:
        """What the current period costs (the plan price, or less under a D14 discount)."""
        return self.plan.amount if self.current_period_price is None \
            else self.current_period_price

    def anchor_boundary(self, index: int) -> datetime:
        return boundary(
            self.billing_cycle_anchor, self.plan.interval, self.plan.interval_count, index
        )

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def has_access(self, now: datetime) -> bool:
        """Paid features are available (D2: a scheduled cancel keeps access; D9: grace)."""
        return access(self.status, self.dunning.grace_until if self.dunning else None, now)

    @property
    def renewal(self) -> tuple[str, datetime] | None:
        """The portal's next date (D2) as data: what happens then ("Renewing on", which
        becomes "Cancelling on" with the same date) and when; None once nothing is due."""
        if self.ended:
            return None
        if self.cancel_at is not None:
            return "Cancelling on", self.cancel_at
        if self.status == Status.ACTIVE and self.pause is not None:
            return "Pausing on", self.pause.paused_at
        if self.status in (Status.ACTIVE, Status.PAST_DUE):
            return "Renewing on", self.current_period_end
        if self.status == Status.TRIALING:
            return "Trial ends on", self.current_period_end
        if self.status == Status.SCHEDULED:
            return "Starts on", self.start_date
        if self.status == Status.PAUSED and self.pause is not None and self.pause.resume_at:
            return "Resuming on", self.pause.resume_at
        return None

    @property
    def renewal_line(self) -> str | None:
        """The portal line of D2: "Renewing on <date>" becomes "Cancelling on <date>"."""
        renewal = self.renewal
        return None if renewal is None else f"{renewal[0]} {renewal[1].isoformat()}"

    def snapshot(self) -> dict[str, Any]:
        """The object carried by events: the fields a webhook consumer needs, and every fact
        the API shows (the read model is built from it). ``pause_collection`` (Stripe's name)
        appears only while a pause is set, ``grace_until`` only while past due (it moves
        with the status, so it never makes an event of its own), ``hold`` only while held,
        ``payment_required`` only while a decline waits for the customer (rule version 3)."""
        renewal = self.renewal
        snap = {
            "id": self.id,
            "object": "subscription",
            "customer": self.customer_id,
            "organization": self.organization_id,
            "plan": self.plan.id,
            "status": self.status.value,
            "created": self.created.isoformat(),
            "start_date": self.start_date.isoformat(),
            "billing_cycle_anchor": self.billing_cycle_anchor.isoformat(),
            "trial_end": self.trial_end.isoformat() if self.trial_end else None,
            "current_period_start": self.current_period_start.isoformat(),
            "current_period_end": self.current_period_end.isoformat(),
            "cancel_at": self.cancel_at.isoformat() if self.cancel_at else None,
            "cancel_at_period_end": self.cancel_at_period_end,
            "canceled_at": self.canceled_at.isoformat() if self.canceled_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "cancellation_details": (
                self.cancellation.model_dump(mode="json") if self.cancellation else None
            ),
            "renewal": None if renewal is None else {"line": self.renewal_line,
                                                     "date": renewal[1].isoformat()},
        }
        if self.pause is not None:
            snap["pause_collection"] = {
                "mode": self.pause.mode,
                "paused_at": self.pause.paused_at.isoformat(),
                "resumes_at": self.pause.resume_at.isoformat() if self.pause.resume_at
                else None,
            }
        if self.pending_plan is not None:
            snap["pending_plan"] = self.pending_plan.id
        if self.discount is not None:  # Stripe's name for a coupon applied to a subscription
            snap["discount"] = {"percent_off": self.discount.offer.percent_off,
                                "periods_left": self.discount.periods_left}
        if self.dunning is not None and self.dunning.requires is not None:
            # Rule version 3: what the customer must do before anything is charged again.
            snap["payment_required"] = {
                "reason": self.dunning.requires,
                "decline_code": self.dunning.last_decline_code,
                "until": self.dunning.ends_at.isoformat() if self.dunning.ends_at else None}
        if self.status == Status.PAST_DUE and self.dunning is not None:
            snap["grace_until"] = self.dunning.grace_until.isoformat()  # D9: has_access
        if self.hold is not None:
            snap["hold"] = {"code": self.hold.code, "since": self.hold.since.isoformat(),
                            "call": self.hold.activity}
        return snap
