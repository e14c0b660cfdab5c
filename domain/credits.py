"""Credit rules (D15-D19) as pure functions over lots: which lot may pay for what, in which
order, what a customer holds, and whether an auto-recharge is due.

The ledger (``ledger/``) stores facts (grants, allocations, lock/unlock); everything that
*interprets* them lives here, with the time passed in, so the rules are tested without a
database and the workflow or API can ask the same questions the ledger does.

Spending order (``spend_key``), the same for strict debits, metered usage and debt settlement:

1. Lots that are locked for new work (purchased credits under a D16 lock) come first. They are
   only eligible at all for usage incurred before the lock (D17), and nothing else may use
   them, so spending them first keeps every unlocked credit free for new work.
2. Soonest expiry first; lots that never expire come last (use-it-or-lose-it before keep).
3. On equal expiry: subscription, then free_daily, then purchased. Subscription and free
   credits are forfeited anyway (D15, D18); purchased credits were paid for and may outlive
   the plan, so they are the last to go.
4. Then the oldest lot (valid_from), then the lowest id: fully deterministic.

Policy ``keep`` (source 002 against 000's ``lock``): purchased credits are never locked and
never expire, whatever expiry was stored with the purchase. The policy is applied when facts
are read, not when they are written, so a stored expiry or lock is never lost, and switching
the policy re-interprets existing balances.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from domain.model import Status

CreditKind = Literal["subscription", "purchased", "free_daily"]
TopupPolicy = Literal["lock", "keep"]
CREDIT_KINDS: tuple[CreditKind, ...] = ("subscription", "free_daily", "purchased")
_KIND_RANK = {kind: rank for rank, kind in enumerate(CREDIT_KINDS)}
# D19: the paid term. Trials are not paid; past_due means the renewal payment is failing and
# dunning owns the card; unpaid/paused/canceled have no paid term.
PAID_TERM_STATUSES = frozenset({Status.ACTIVE, Status.NON_RENEWING})
_NEVER = datetime.max.replace(tzinfo=UTC)  # sorts never-expiring lots after every expiry


@dataclass(frozen=True)
class Lot:
    """One grant and what is left of it (amount minus everything allocated from it)."""

    id: int
    kind: CreditKind
    remaining: int
    valid_from: datetime
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Take:
    """``amount`` credits taken from lot ``lot_id`` (of ``kind``)."""

    lot_id: int
    kind: CreditKind
    amount: int


@dataclass(frozen=True)
class Debt:
    """Usage recorded but not (fully) paid: ``open`` credits, incurred at ``incurred_at``."""

    id: int
    incurred_at: datetime
    open: int


def effective_expiry(lot: Lot, policy: TopupPolicy) -> datetime | None:
    """The instant a lot stops existing; ``keep`` makes purchased credits permanent (002)."""
    if lot.kind == "purchased" and policy == "keep":
        return None
    return lot.expires_at


def is_live(lot: Lot, at: datetime, policy: TopupPolicy) -> bool:
    """The lot exists at ``at``: already granted, not yet expired."""
    expiry = effective_expiry(lot, policy)
    return lot.valid_from <= at and (expiry is None or at < expiry)


def purchased_locked(at: datetime, locked_since: datetime | None, policy: TopupPolicy) -> bool:
    """D16: purchased credits may not pay for usage incurred at ``at`` (at or after the lock).
    Usage incurred before the lock may still use them (D17)."""
    return policy == "lock" and locked_since is not None and at >= locked_since


def spend_key(lot: Lot, locked_now: bool, policy: TopupPolicy) -> tuple:
    """Sort key of the spending order documented in the module docstring."""
    expiry = effective_expiry(lot, policy)
    stuck = locked_now and lot.kind == "purchased"
    return (not stuck, expiry or _NEVER, _KIND_RANK[lot.kind], lot.valid_from, lot.id)


def spend(lots: Iterable[Lot], amount: int, *, live_at: datetime, incurred_at: datetime,
          locked_since: datetime | None, policy: TopupPolicy) -> list[Take]:
    """Take up to ``amount`` from the lots live at ``live_at`` that may pay for usage incurred
    at ``incurred_at``, in spending order. May return less than asked: a strict debit checks
    the sum, metered usage records the rest as outstanding."""
    locked_now = policy == "lock" and locked_since is not None
    eligible = [
        lot for lot in lots
        if lot.remaining > 0 and is_live(lot, live_at, policy)
        and not (lot.kind == "purchased" and purchased_locked(incurred_at, locked_since, policy))
    ]
    eligible.sort(key=lambda lot: spend_key(lot, locked_now, policy))
    takes: list[Take] = []
    left = amount
    for lot in eligible:
        if left <= 0:
            break
        take = min(lot.remaining, left)
        takes.append(Take(lot.id, lot.kind, take))
        left -= take
    return takes


def settle(lots: Sequence[Lot], debts: Sequence[Debt], *, at: datetime,
           locked_since: datetime | None, policy: TopupPolicy) -> list[tuple[Debt, Take]]:
    """Pay debts oldest first from the lots live at ``at`` (D17: locked purchased credits pay
    only debts incurred before the lock). Returns (debt, take) pairs."""
    pool = {lot.id: lot for lot in lots}
    paid: list[tuple[Debt, Take]] = []
    for debt in sorted(debts, key=lambda d: (d.incurred_at, d.id)):
        takes = spend(pool.values(), debt.open, live_at=at, incurred_at=debt.incurred_at,
                      locked_since=locked_since, policy=policy)
        for take in takes:
            lot = pool[take.lot_id]
            pool[take.lot_id] = replace(lot, remaining=lot.remaining - take.amount)
            paid.append((debt, take))
    return paid


def holdings(lots: Iterable[Lot], at: datetime, locked_since: datetime | None,
             policy: TopupPolicy) -> dict[str, int]:
    """Live credits at ``at`` per kind, with purchased split into usable and locked."""
    totals = {"subscription": 0, "free_daily": 0, "purchased": 0, "locked_purchased": 0}
    locked = purchased_locked(at, locked_since, policy)
    for lot in lots:
        if lot.remaining <= 0 or not is_live(lot, at, policy):
            continue
        key = "locked_purchased" if lot.kind == "purchased" and locked else lot.kind
        totals[key] += lot.remaining
    return totals


def free_daily_window(day: date) -> tuple[datetime, datetime]:
    """D18: a free allowance is valid for its UTC day only."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def in_paid_term(status: Status | str, in_extension: bool = False) -> bool:
    """D19: active, or cancelling (non_renewing) but still paid. A D5 extension past the
    paid-through date keeps access but is unpaid, so it is not a paid term."""
    return Status(status) in PAID_TERM_STATUSES and not in_extension


def auto_recharge_due(balance: int, threshold: int, amount: int, paid_term: bool) -> int:
    """D19: how many credits to buy now (0 = none). Due when the spendable balance is strictly
    below ``threshold`` during a paid term; an ``amount`` of 0 or less disables recharging."""
    if amount <= 0 or not paid_term:
        return 0
    return amount if balance < threshold else 0


FREE_PLAN_STATUSES = frozenset({Status.CANCELED, Status.UNPAID})


def on_free_plan(subscriptions: Iterable[tuple[Status | str, bool]]) -> bool:
    """D13/D18: the customer is on the free plan (and gets the free daily allowance) when no
    paid subscription can still give paid access: none, only free-plan ones, or every paid one
    ended or unpaid. ``subscriptions`` are (status, plan_is_free) pairs. A trial, a dunning
    grace, a pause or a subscription still starting is not the free plan."""
    return all(is_free or Status(status) in FREE_PLAN_STATUSES
               for status, is_free in subscriptions)
