"""What the core asks the durable shell to do. The workflow maps each command to an activity;
every money or credit command carries an idempotency key built from business facts only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from domain.model import Event, Frozen


class Charge(Frozen):
    """Charge a period's price (or, rule version 4, the prorated difference of an upgrade:
    purpose ``proration``, key ``{subscription}:{period}:change{n}:{plan}``). The result comes
    back as a PaymentOutcome request."""

    kind: Literal["charge"] = "charge"
    idempotency_key: str  # {subscription}:{period}:{attempt}
    period_key: str
    attempt: int
    amount: int
    currency: str
    purpose: Literal["renewal", "first_period", "proration"]


class GrantCredits(Frozen):
    kind: Literal["grant_credits"] = "grant_credits"
    idempotency_key: str
    period_key: str
    amount: int
    period_start: datetime
    period_end: datetime


class ForfeitCredits(Frozen):
    """D15: subscription credits of a period end with it."""

    kind: Literal["forfeit_credits"] = "forfeit_credits"
    idempotency_key: str
    period_key: str
    at: datetime


class LockPurchasedCredits(Frozen):
    """D16: the paid term ended; purchased credits lock until reactivation or resubscription."""

    kind: Literal["lock_purchased_credits"] = "lock_purchased_credits"
    idempotency_key: str
    period_key: str
    at: datetime


class UnlockPurchasedCredits(Frozen):
    """D12/D16: a paused subscription resumed; purchased credits fund new work again."""

    kind: Literal["unlock_purchased_credits"] = "unlock_purchased_credits"
    idempotency_key: str
    period_key: str
    at: datetime


class CollectPendingCharges(Frozen):
    """D7: end-of-term cancellation bills what is pending in a final charge."""

    kind: Literal["collect_pending_charges"] = "collect_pending_charges"
    idempotency_key: str
    period_key: str
    currency: str


class DiscardPendingCharges(Frozen):
    """D6: immediate cancellation discards metered usage and closes open charges."""

    kind: Literal["discard_pending_charges"] = "discard_pending_charges"
    idempotency_key: str
    period_key: str
    currency: str


class Refund(Frozen):
    kind: Literal["refund"] = "refund"
    idempotency_key: str
    period_key: str
    payment_intent_id: str
    amount: int
    reason: str


class Emit(Frozen):
    """Record a D8 event durably (and hand it to outbound delivery)."""

    kind: Literal["emit"] = "emit"
    event: Event


Command = (
    Charge
    | GrantCredits
    | ForfeitCredits
    | LockPurchasedCredits
    | UnlockPurchasedCredits
    | CollectPendingCharges
    | DiscardPendingCharges
    | Refund
    | Emit
)


class PaymentOutcome(Frozen):
    """The result of a Charge command, fed back into the core by the workflow."""

    idempotency_key: str
    status: Literal["succeeded", "declined"]
    amount: int
    payment_intent_id: str | None = None
    decline_code: str | None = None
    message: str | None = None


class CallFailed(Frozen):
    """A command's call failed so that only an operator can fix it (the shell's view of a
    non-retryable activity error, or one that kept failing past the alarm bound)."""

    idempotency_key: str
    activity: str
    code: str
    message: str
    stripe_request_id: str | None = None
    charge: Charge | None = None  # the Charge whose call failed, if it was one
