"""D13: what a customer may use now. During a paid term (D2: a scheduled cancel keeps it; D9:
the dunning grace keeps it) the paid plan's features and team seats; after it, the free plan:
paid features and extra seats removed, the free daily credits (D18) start. Content is never
part of this: nothing is deleted when a term ends, so resubscribing finds everything."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from domain.credits import on_free_plan
from domain.model import Frozen, SubscriptionState
from domain.plans import Plan

TEAM_SEATS = "team_seats"
FREE_SEATS = 1  # the owner alone


class Entitlements(Frozen):
    plan: str
    paid: bool
    features: tuple[str, ...]
    seats: int | None  # None: team seats as the paid plan allows
    free_daily_credits: int
    paid_through: datetime | None = None  # when the current paid access ends or renews
    subscription: str | None = None  # the subscription that grants it


def _paid_through(state: SubscriptionState) -> datetime:
    return state.cancel_at or state.current_period_end


def entitlements(states: Iterable[SubscriptionState], now: datetime, *, free_plan: Plan | None,
                 free_daily_credits: int) -> Entitlements:
    states = list(states)
    paid = [s for s in states if not s.plan.is_free and s.has_access(now)]
    # The free allowance follows the wallet's rule (domain.credits.on_free_plan).
    free_daily = free_daily_credits if on_free_plan(
        (s.status, s.plan.is_free) for s in states) else 0
    if paid:
        main = max(paid, key=_paid_through)
        features = tuple(sorted({f for s in paid for f in s.plan.features}))
        return Entitlements(plan=main.plan.id, paid=True, features=features,
                            seats=None if TEAM_SEATS in features else FREE_SEATS,
                            free_daily_credits=free_daily, paid_through=_paid_through(main),
                            subscription=main.id)
    features = tuple(f for f in (free_plan.features if free_plan else ()) if f != TEAM_SEATS)
    return Entitlements(plan=free_plan.id if free_plan else "free", paid=False,
                        features=features, seats=FREE_SEATS,
                        free_daily_credits=free_daily)
