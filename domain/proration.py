"""Mid-period plan changes (rule version 4): (subscription, target plan, now) -> PlanChangeQuote.

One pure function decides when a change takes effect and what it costs, so the preview the
caller is shown and the charge the workflow then issues are the same numbers. An *upgrade*
(a higher price per unit of time, same currency) of the same billing term takes effect now
and charges the prorated difference; anything else (a downgrade, a new term) waits for the
period end (D11's switch at renewal).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from domain.model import Frozen, Status, SubscriptionState
from domain.plans import Plan

SECOND = timedelta(seconds=1)

# Nominal lengths, only to compare prices across terms (never to bill), in 1/4800 s so that
# all are exact integers: a Gregorian year of 365.2425 days, a month a twelfth of it.
_DAY = 86400 * 4800
_LENGTH = {"second": 4800, "minute": 60 * 4800, "hour": 3600 * 4800, "day": _DAY,
           "week": 7 * _DAY, "month": 146097 * 86400, "year": 12 * 146097 * 86400}


def term_length(plan: Plan) -> int:
    """The plan's nominal term in 1/4800 seconds."""
    return _LENGTH[plan.interval] * plan.interval_count


def is_upgrade(current: Plan, new: Plan) -> bool:
    """An upgrade costs more per unit of time (same currency): 2000/month -> 5000/month is
    one, 2000/month -> 20000/year is not (about 1667/month). Compared exactly, as
    new.amount / new term > current.amount / current term, cross-multiplied."""
    return (new.currency == current.currency
            and new.amount * term_length(current) > current.amount * term_length(new))


def same_term(a: Plan, b: Plan) -> bool:
    return (a.interval, a.interval_count) == (b.interval, b.interval_count)


def prorate(amount: int, start: datetime, end: datetime, at: datetime) -> int:
    """``amount`` (minor units) times the share of [start, end) still ahead at ``at``, counted
    in whole seconds (the part of a started second is not counted) and rounded down: the
    customer never pays for time already used, nor a fraction of a minor unit."""
    total = (end - start) // SECOND
    remaining = max(min((end - at) // SECOND, total), 0)
    return amount * remaining // total if total > 0 else 0


class PlanChangeQuote(Frozen):
    """What a change to ``plan`` does if confirmed at ``at``: ``timing`` ``now`` charges
    ``amount_due`` at once and grants ``credits_granted`` extra credits for the rest of the
    period; ``period_end`` charges nothing now and the new price from ``effective_at``."""

    subscription: str
    from_plan: str
    plan: str
    currency: str
    timing: Literal["now", "period_end"]
    upgrade: bool
    at: datetime
    effective_at: datetime
    period_start: datetime
    period_end: datetime
    seconds_remaining: int
    seconds_in_period: int
    price_difference: int  # new plan price - current plan price, per period (minor units)
    amount_due: int  # charged now (minor units)
    credits_granted: int  # extra subscription credits now, forfeited at period_end (D15)
    next_renewal_at: datetime
    next_renewal_amount: int  # the new plan's price, charged at next_renewal_at


def takes_effect_now(state: SubscriptionState, plan: Plan) -> bool:
    """Under rule version 4 (the caller checks the version): a same-term upgrade of a paid,
    renewing period takes effect now. Everything else (a downgrade, a new term, a trial, a
    scheduled cancellation or start) keeps the change at the period end."""
    return (state.status == Status.ACTIVE and state.cancel_at is None
            and state.pause is None and not state.in_extension and state.dunning is None
            and same_term(state.plan, plan) and is_upgrade(state.plan, plan))


def quote(state: SubscriptionState, plan: Plan, at: datetime, now: bool) -> PlanChangeQuote:
    """The change to ``plan`` confirmed at ``at`` (the state advanced to ``at``); ``now``:
    it takes effect at once (``takes_effect_now`` and rules that allow it).

    Now: ``amount_due`` = (new price - current price) prorated over the period (``prorate``);
    ``credits_granted`` = the increase in included credits, prorated the same way (none when
    the new plan includes fewer: nothing is taken back). The period's dates and anchor stay.
    """
    start, end = state.current_period_start, state.current_period_end
    total = (end - start) // SECOND
    remaining = max(min((end - at) // SECOND, total), 0)
    difference = plan.amount - state.plan.amount
    # A subscription that has not started simply starts on the new plan.
    effective = at if now else (state.start_date if state.status == Status.SCHEDULED else end)
    return PlanChangeQuote(
        subscription=state.id, from_plan=state.plan.id, plan=plan.id, currency=plan.currency,
        timing="now" if now else "period_end", upgrade=is_upgrade(state.plan, plan), at=at,
        effective_at=effective, period_start=start, period_end=end,
        seconds_remaining=remaining, seconds_in_period=total, price_difference=difference,
        amount_due=prorate(difference, start, end, at) if now else 0,
        credits_granted=prorate(max(plan.included_credits - state.plan.included_credits, 0),
                                start, end, at) if now else 0,
        next_renewal_at=end, next_renewal_amount=plan.amount)
