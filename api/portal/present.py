"""What the portal page says, in plain words, from the core's state and the D23 preview.

Pure functions: the status line is the core's own ``renewal`` (what happens, and when) with the
date written for people, so "Renewing on" and "Cancelling on" always show the same date.
No rule numbers reach the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from api.preview import CancellationPreview
from domain.model import Status, SubscriptionState
from domain.plans import Plan
from invoices.kinds import kind_of
from invoices.pdf import ZERO_DECIMAL
from invoices.types import InvoiceRecord
from ledger.results import Balances
from payments.records import CardOnFile

STATUS_WORDS = {
    Status.SCHEDULED: "Starts later",
    Status.INCOMPLETE: "Waiting for the first payment",
    Status.TRIALING: "Free trial",
    Status.ACTIVE: "Active",
    Status.NON_RENEWING: "Cancelling",
    Status.PAST_DUE: "Payment failed",
    Status.UNPAID: "Unpaid",
    Status.PAUSED: "Paused",
    Status.CANCELED: "Ended",
}

REASONS = {
    "too_expensive": "It costs too much",
    "missing_features": "It is missing features I need",
    "switched_service": "I am switching to another service",
    "unused": "I do not use it enough",
    "customer_service": "I was unhappy with the support",
    "too_complex": "It is too hard to use",
    "low_quality": "The quality was not good enough",
    "other": "Another reason",
}

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£"}


def when(at: datetime) -> str:
    """A date people read: "24 December 2026, 10:00 UTC"."""
    return f"{at.day} {at:%B %Y}, {at:%H:%M} UTC"


def money(amount: int, currency: str) -> str:
    symbol = _SYMBOLS.get(currency.lower())
    value = f"{amount:,}" if currency.lower() in ZERO_DECIMAL else f"{amount / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency.upper()}"


def every(plan: Plan) -> str:
    unit = plan.interval
    return f"per {unit}" if plan.interval_count == 1 else f"every {plan.interval_count} {unit}s"


def status_line(state: SubscriptionState) -> str | None:
    renewal = state.renewal
    return None if renewal is None else f"{renewal[0]} {when(renewal[1])}"


def next_price(state: SubscriptionState) -> int:
    """What the next renewal charges: the pending plan's price, less an accepted offer."""
    amount = (state.pending_plan or state.plan).amount
    if state.discount is not None and state.discount.periods_left > 0:
        return state.discount.offer.price(amount)
    return amount


@dataclass(frozen=True)
class Summary:
    """One subscription as the page shows it."""

    id: str
    plan: str
    price: str
    status: str
    line: str | None
    period: str
    next_label: str
    next_step: str
    notices: tuple[str, ...]
    ended: bool
    can_reactivate: bool
    can_pause: bool
    can_resume: bool


def summarize(state: SubscriptionState, now: datetime) -> Summary:
    plan = state.plan
    notices: list[str] = []
    if state.ended:
        ended = state.ended_at or state.canceled_at or now
        next_label, next_step = "Ended", f"On {when(ended)}. You are not charged again."
        notices.append("This subscription has ended. Its paid features are no longer "
                       "available; start a new subscription to use them again.")
    elif state.cancel_at is not None:
        next_label = "Ends"
        next_step = (f"On {when(state.cancel_at)}. You keep full access until then and are "
                     "not charged again.")
    elif state.status == Status.PAUSED:
        resume = state.pause.resume_at if state.pause else None
        next_label = "Paused"
        next_step = (f"Nothing is charged until it resumes on {when(resume)}." if resume
                     else "Nothing is charged until you resume it.")
    elif state.status == Status.SCHEDULED:
        next_label, next_step = "Starts", f"On {when(state.start_date)}, with its first charge."
    elif state.pause is not None:
        next_label = "Pauses"
        next_step = f"On {when(state.pause.paused_at)}. Nothing is charged after that."
    else:
        next_label = "Next charge"
        next_step = (f"{money(next_price(state), plan.currency)} on "
                     f"{when(state.current_period_end)}")
    if state.status in (Status.PAST_DUE, Status.INCOMPLETE, Status.UNPAID):
        notices.append("Your last payment did not go through. Update your card: we try "
                       "again as soon as you do.")
    if state.pending_plan is not None:
        notices.append(f"Changes to {state.pending_plan.name} at the next renewal.")
    if state.discount is not None and state.discount.periods_left > 0:
        notices.append(f"{state.discount.offer.percent_off}% off for the next "
                       f"{state.discount.periods_left} charge(s).")
    return Summary(
        id=state.id, plan=plan.name, price=f"{money(plan.amount, plan.currency)} {every(plan)}",
        status=STATUS_WORDS[state.status], line=status_line(state),
        period=f"{when(state.current_period_start)} to {when(state.current_period_end)}",
        next_label=next_label, next_step=next_step, notices=tuple(notices), ended=state.ended,
        can_reactivate=state.status == Status.NON_RENEWING,
        can_pause=state.status == Status.ACTIVE and state.pause is None
        and state.cancel_at is None,
        can_resume=state.pause is not None and not state.ended)


def confirmation(action: str, state: SubscriptionState) -> str | None:
    """The message after an action succeeded, with the exact date it took effect for."""
    if action == "cancel":
        if state.cancel_at is not None:
            return (f"Your subscription is cancelled. You keep access until "
                    f"{when(state.cancel_at)}, and you will not be charged again.")
        if state.ended:
            return (f"Your subscription ended on {when(state.ended_at or state.canceled_at)}. "
                    "You will not be charged again.")
    if action in ("reactivate", "offer") and state.renewal is not None:
        kept = "Your subscription continues." if action == "reactivate" else \
            "Thank you for staying: your discount applies from the next charge."
        return f"{kept} {status_line(state)}."
    if action == "pause":
        return "Your subscription will pause." if state.pause else None
    if action == "resume":
        return "Your subscription is active again."
    return None


@dataclass(frozen=True)
class CreditLine:
    label: str
    amount: int
    explanation: str


def credit_lines(balances: Balances, policy: str) -> list[CreditLine]:
    purchased = ("Credits you bought stay usable while your subscription is paid for, "
                 "including while it is cancelling. ")
    purchased += ("When the paid time ends they are locked until you reactivate or "
                  "subscribe again." if policy == "lock" else
                  "They stay usable after your subscription ends.")
    lines = [
        CreditLine("Subscription credits", balances.subscription,
                   "Included with each paid period. They end with the period: they do not "
                   "carry over and are not refunded."),
        CreditLine("Purchased credits", balances.purchased, purchased),
        CreditLine("Locked credits", balances.locked_purchased,
                   "Purchased credits you cannot use for new work right now. They still pay "
                   "for usage from before they were locked, and unlock when you reactivate or "
                   "subscribe again."),
    ]
    if balances.free_daily:
        lines.append(CreditLine("Free daily credits", balances.free_daily,
                                "Given every day while you are on the free plan."))
    if balances.outstanding:
        lines.append(CreditLine("Usage not yet paid", balances.outstanding,
                                "Usage your credits did not cover yet; new credits pay it "
                                "first."))
    return lines


def cancel_effects(preview: CancellationPreview) -> list[str]:
    """What cancelling changes, in the customer's words (from the cancellation preview)."""
    out = []
    c = preview.credits
    if c.subscription_credits_forfeited:
        out.append(f"{c.subscription_credits_forfeited} subscription credits end with your "
                   "access.")
    if c.purchased_credits_locked:
        out.append(f"{c.purchased_credits_locked} purchased credits are locked when your "
                   "access ends; they unlock if you reactivate or subscribe again.")
    if c.purchased_credits_kept:
        out.append(f"{c.purchased_credits_kept} purchased credits stay yours to use.")
    if c.outstanding_usage:
        out.append(f"{c.outstanding_usage} credits of usage are still unpaid; your credits, "
                   "locked ones included, still pay for it.")
    oc = preview.open_charges
    if oc.pending_items:
        out.append(f"{oc.pending_items} pending item(s) "
                   f"({money(oc.pending_amount, preview.currency)}) are billed in a final "
                   "charge when it ends, or dropped if you end it now.")
    if oc.open_attempts:
        out.append("A payment is still being processed; its outcome does not change.")
    if preview.default_payment_method:
        out.append("Your card stays on file but is not charged again for this subscription.")
    return out


_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express",
           "discover": "Discover", "diners": "Diners Club", "jcb": "JCB",
           "unionpay": "UnionPay", "cartes_bancaires": "Cartes Bancaires"}


@dataclass(frozen=True)
class Card:
    """The card on file as the page names it: "Visa ending 4242", or its id when Stripe did
    not say (``is_id``: the page shows it as code)."""

    text: str
    is_id: bool


def card(on_file: CardOnFile | None) -> Card | None:
    if on_file is None:
        return None
    if on_file.brand and on_file.last4:
        brand = _BRANDS.get(on_file.brand, on_file.brand.replace("_", " ").title())
        return Card(f"{brand} ending {on_file.last4}", is_id=False)
    return Card(on_file.payment_method, is_id=True)


INVOICE_STATUS_WORDS = {
    "paid": "Paid",
    "open": "Not paid yet",
    "uncollectible": "Payment failed",
    "void": "Cancelled, nothing to pay",
}


@dataclass(frozen=True)
class InvoiceRow:
    id: str
    number: str
    date: str
    what: str
    status: str
    paid: bool
    total: str


def day(at: datetime) -> str:
    """A day people read: "24 December 2026"."""
    return f"{at.day} {at:%B %Y}"


def invoice_row(invoice: InvoiceRecord) -> InvoiceRow:
    return InvoiceRow(id=invoice.id, number=invoice.display_number,
                      date=day(invoice.created_at), what=kind_of(invoice.kind).title,
                      status=INVOICE_STATUS_WORDS[invoice.status],
                      paid=invoice.status == "paid",
                      total=money(invoice.total, invoice.currency))
