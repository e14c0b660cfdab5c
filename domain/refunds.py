"""What an immediate cancellation refunds (D6): (state, instant, mode) -> Refund commands.

The current period may have been paid by more than one PaymentIntent: its renewal (or first)
charge, and under rule version 4 one prorated charge per mid-period upgrade. Each is
refunded on its own intent, never more than it charged:

- ``full``: everything paid for the period, each charge in full;
- ``prorated``: the unused share of each charge over the time it paid for: the period charge
  over [period start, period end), an upgrade's over [the instant it was prorated from,
  period end). Together that is the current price for the rest of the period, as the
  customer was charged for it. Integer microseconds, rounded down per charge;
- ``none``: nothing.

Idempotency keys come from business facts, so a retried refund activity never refunds
twice: ``{subscription}:{period}:refund`` for the period charge and
``{subscription}:{period}:change{n}:refund`` for the n-th upgrade.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.commands import Refund
from domain.model import SubscriptionState

MICROSECOND = timedelta(microseconds=1)


def refundable(amount: int, paid_from: datetime, end: datetime, at: datetime,
               mode: str) -> int:
    """The part of ``amount`` (paid for [paid_from, end)) refunded at ``at`` under ``mode``;
    at most ``amount``."""
    if mode == "full":
        return amount
    if mode != "prorated":
        return 0
    total = (end - paid_from) // MICROSECOND
    if total <= 0:
        return 0
    remaining = min(max((end - max(at, paid_from)) // MICROSECOND, 0), total)
    return amount * remaining // total


def cancellation_refunds(state: SubscriptionState, at: datetime, mode: str
                         ) -> tuple[Refund, ...]:
    """One Refund per PaymentIntent that paid for the current period and has something to
    give back: the period charge first, then the upgrades in order."""
    pk, end = state.period_key, state.current_period_end
    paid = [(f"{state.id}:{pk}:refund", state.current_period_payment_intent,
             state.current_period_paid, state.current_period_start)]
    paid += [(f"{state.id}:{pk}:change{u.seq}:refund", u.payment_intent_id, u.amount,
              u.covers_from) for u in state.current_period_upgrades]
    refunds = []
    for key, intent, amount, paid_from in paid:
        refund = refundable(amount, paid_from, end, at, mode)
        if refund > 0 and intent:
            refunds.append(Refund(idempotency_key=key, period_key=pk, payment_intent_id=intent,
                                  amount=refund, reason=f"cancellation_{mode}"))
    return tuple(refunds)
