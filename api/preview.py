"""D23: what a cancellation would affect, shown before the customer confirms.

The dates and amounts come from the core itself: each mode is run through
``lifecycle.validate``/``handle`` on a copy of the live state (pure functions, nothing is
sent), so the preview names exactly the end date and refund the workflow would apply, or the
reason it would refuse. Credits come from the ledger's balances.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api import billing
from api.schemas.subscriptions import Renewal
from domain import lifecycle
from domain.commands import Refund
from domain.errors import RequestRefused
from domain.model import Status, SubscriptionState
from domain.requests import Cancel
from ledger.service import Ledger
from payments.records import OpenCharges
from payments.service import PaymentService

_END = "2026-12-24T10:00:00+00:00"


class ModePreview(BaseModel):
    allowed: bool
    refused_reason: str | None = Field(default=None, description="Why the core would refuse.")
    ends_at: datetime | None = None
    has_access_until: datetime | None = None
    renewal_line: str | None = Field(default=None, description="The portal line afterwards.")
    prorated_refund: int | None = Field(default=None, description=(
        "Minor units refunded with refund=prorated (immediately only)."))


class CreditsAffected(BaseModel):
    subscription_credits_forfeited: int = Field(description=(
        "This period's subscription credits: they end with the period (D15)."))
    purchased_credits_locked: int = Field(description=(
        "Purchased credits that lock when the paid term ends (D16, policy lock)."))
    purchased_credits_kept: int = Field(description="Purchased credits that stay usable "
                                        "(policy keep).")
    outstanding_usage: int = Field(description="Usage not yet paid for; locked credits "
                                   "still settle it (D17).")


class RetentionOfferPreview(BaseModel):
    """D14: what the customer may accept instead of cancelling."""

    percent_off: int
    periods: int
    price: int = Field(description="What each discounted period costs, in minor units.")
    accept_url: str


class CancellationPreview(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "object": "cancellation_preview", "subscription": "sub_4fT9kQ2mZx8LpR1a",
        "status": "active", "currency": "usd",
        "renewal": {"line": f"Renewing on {_END}", "date": _END},
        "at_period_end": {"allowed": True, "ends_at": _END, "has_access_until": _END,
                          "renewal_line": f"Cancelling on {_END}"},
        "immediately": {"allowed": True, "ends_at": "2026-11-30T08:12:00+00:00",
                        "has_access_until": "2026-11-30T08:12:00+00:00",
                        "prorated_refund": 1612},
        "credits": {"subscription_credits_forfeited": 4200, "purchased_credits_locked": 500,
                    "purchased_credits_kept": 0, "outstanding_usage": 0},
        "default_payment_method": "pm_1Q2w3E4r",
        "open_charges": {"pending_items": 0, "pending_amount": 0, "open_attempts": 0,
                         "open_amount": 0}}]})

    object: Literal["cancellation_preview"] = "cancellation_preview"
    subscription: str
    status: str
    currency: str
    renewal: Renewal
    at_period_end: ModePreview
    immediately: ModePreview
    credits: CreditsAffected
    default_payment_method: str | None = Field(default=None, description=(
        "The card renewals use; it is not charged again after the end."))
    open_charges: OpenCharges = Field(description=(
        "Pending items (billed in the final charge at period end, D7; metered usage is "
        "discarded on immediate cancellation, D6) and charges whose outcome is not known yet."))
    retention_offer: RetentionOfferPreview | None = Field(default=None, description=(
        "D14: a discount the customer may accept instead of cancelling (null: none, already "
        "used, or not eligible)."))


def _dry_run(state: SubscriptionState, request: Cancel,
             now: datetime) -> lifecycle.Decision | RequestRefused:
    try:
        lifecycle.validate(state, request, now)
    except RequestRefused as refused:
        return refused
    current = lifecycle.advance(state, now).state
    if current.awaiting_charge is not None:
        return RequestRefused("charge_in_flight", "a payment is being processed; preview "
                              "again in a moment")
    return lifecycle.handle(current, request, now)


def _at_period_end(state: SubscriptionState, now: datetime) -> ModePreview:
    outcome = _dry_run(state, Cancel(mode="at_period_end"), now)
    if isinstance(outcome, RequestRefused):
        return ModePreview(allowed=False, refused_reason=outcome.message)
    after = outcome.state
    return ModePreview(allowed=True, ends_at=after.cancel_at, has_access_until=after.cancel_at,
                       renewal_line=after.renewal_line)


def _immediately(state: SubscriptionState, now: datetime) -> ModePreview:
    outcome = _dry_run(state, Cancel(mode="immediately", refund="prorated"), now)
    if isinstance(outcome, RequestRefused):
        return ModePreview(allowed=False, refused_reason=outcome.message)
    refund = sum(c.amount for c in outcome.commands if isinstance(c, Refund))
    return ModePreview(allowed=True, ends_at=outcome.state.ended_at,
                       has_access_until=outcome.state.ended_at, renewal_line=None,
                       prorated_refund=refund)


def build_preview(state: SubscriptionState, now: datetime, ledger: Ledger,
                  payments: PaymentService) -> CancellationPreview:
    balances = ledger.balances(state.customer_id, now)
    lock = ledger.policy == "lock"
    credits = CreditsAffected(
        subscription_credits_forfeited=0 if state.ended else balances.subscription,
        purchased_credits_locked=balances.purchased if lock and not state.ended else 0,
        purchased_credits_kept=0 if lock else balances.purchased,
        outstanding_usage=balances.outstanding)
    return CancellationPreview(
        subscription=state.id, status=state.status.value, currency=state.plan.currency,
        renewal=Renewal.of(state), at_period_end=_at_period_end(state, now),
        immediately=_immediately(state, now), credits=credits,
        default_payment_method=billing.default_payment_method(payments, state.customer_id),
        open_charges=billing.open_charges(payments, state.id),
        retention_offer=_offer(state))


def _offer(state: SubscriptionState) -> RetentionOfferPreview | None:
    offer = state.policy.retention_offer
    eligible = (offer is not None and not state.retention_offer_used and not state.ended
                and not state.in_extension
                and state.status in (Status.ACTIVE, Status.NON_RENEWING))
    if not eligible:
        return None
    return RetentionOfferPreview(
        percent_off=offer.percent_off, periods=offer.periods,
        price=offer.price(state.plan.amount),
        accept_url=f"/v1/subscriptions/{state.id}/accept_retention_offer")
