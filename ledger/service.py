"""The credit ledger (D15-D20, D22): grants, forfeits, locks, debits and metered usage, each an
append-only entry written once per idempotency key.

Every write runs in ``account_transaction`` (one writer per customer at a time), looks its key
up first and, if it is already recorded, returns the recorded result instead of applying it
again; a concurrent duplicate that slips past the look-up hits the UNIQUE constraint and is
answered the same way. The rules themselves (order, expiry, locks) live in domain.credits;
time is always an argument (UTC-aware), never read from the clock.

Debts first: whenever credits become available (a grant, a top-up, an unlock) outstanding
usage is settled before anything else can spend them, so unpaid usage never sits next to idle
credits that could pay it (D17).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from config.settings import CreditSettings
from domain import credits
from domain.errors import RequestInvalid
from domain.periods import require_utc
from ledger import store
from ledger.errors import IdempotencyConflict, InsufficientCredits
from ledger.models import CreditEntry
from ledger.results import Balances, EntryResult
from ledger.types import CreditGrant, CreditPeriodChange

T = TypeVar("T")
MAX_KEY_LENGTH = 200  # the column holds 255: room for derived keys such as "<key>:settle"
MAX_CUSTOMER_ID_LENGTH = 64


@dataclass(frozen=True)
class _Expect:
    """What a replayed idempotency key must match (amount None: decided by the ledger)."""

    customer_id: str
    entry_type: str
    credit_kind: str | None = None
    amount: int | None = None

    def matches(self, entry: CreditEntry) -> bool:
        return (entry.customer_id, entry.entry_type, entry.credit_kind) == (
            self.customer_id, self.entry_type, self.credit_kind) and (
            self.amount is None or self.amount == entry.amount)


class Ledger:
    """One customer's credits per account; safe to share between threads (each call opens
    its own transaction). Results are values; errors are InsufficientCredits (nothing was
    debited), IdempotencyConflict (a key reused for something else), RequestInvalid (bad
    input) and ValueError for naive datetimes."""

    def __init__(self, engine: Engine, settings: CreditSettings | None = None) -> None:
        self.engine = engine
        self.settings = settings or CreditSettings()

    @property
    def policy(self) -> credits.TopupPolicy:
        return self.settings.topup_policy

    # Grants ----------------------------------------------------------------------------------

    def grant_subscription_credits(self, grant: CreditGrant) -> EntryResult:
        """D15: a paid period's included credits, usable from its start until its end."""
        start = require_utc(grant.period_start, "period_start")
        end = require_utc(grant.period_end, "period_end")
        if end <= start:
            raise RequestInvalid("invalid_period", "period_end must be after period_start",
                                 field="period_end")
        return self._grant(
            _Expect(grant.customer_id, "grant", "subscription", _positive(grant.amount)),
            grant.idempotency_key, occurred_at=start, expires_at=end,
            subscription_id=grant.subscription_id, period_key=grant.period_key)

    def purchase_topup(self, customer_id: str, amount: int, idempotency_key: str,
                       at: datetime, expires_at: datetime | None = None) -> EntryResult:
        """D16: purchased credits, from ``at`` until their own ``expires_at`` (None: never).
        Auto-recharges (D19) are recorded here too, under the payment's idempotency key."""
        at = require_utc(at, "at")
        if expires_at is not None and require_utc(expires_at, "expires_at") <= at:
            raise RequestInvalid("invalid_expiry", "expires_at must be after at",
                                 field="expires_at")
        return self._grant(_Expect(customer_id, "grant", "purchased", _positive(amount)),
                           idempotency_key, occurred_at=at, expires_at=expires_at)

    def grant_free_daily(self, customer_id: str, day: date) -> EntryResult | None:
        """D18: the free plan's allowance for one UTC day, once per (customer, day). None when
        the allowance is configured to 0."""
        if isinstance(day, datetime):
            day = require_utc(day, "day").date()
        amount = self.settings.free_daily_allowance
        if amount <= 0:
            return None
        start, end = credits.free_daily_window(day)
        return self._grant(_Expect(customer_id, "grant", "free_daily"),
                           f"{customer_id}:free_daily:{day.isoformat()}", occurred_at=start,
                           expires_at=end, amount=amount)

    def _grant(self, expect: _Expect, key: str, *, occurred_at: datetime,
               expires_at: datetime | None, amount: int | None = None,
               subscription_id: str | None = None, period_key: str | None = None
               ) -> EntryResult:
        def write(session: Session) -> EntryResult:
            result = store.append(session, CreditEntry(
                customer_id=expect.customer_id, entry_type="grant", idempotency_key=key,
                credit_kind=expect.credit_kind, amount=amount or expect.amount,
                occurred_at=occurred_at, expires_at=expires_at,
                subscription_id=subscription_id, period_key=period_key))
            self._settle(session, expect.customer_id, occurred_at, f"{key}:settle")
            return result

        return self._record(expect, key, write)

    # Period changes ----------------------------------------------------------------------------

    def forfeit_subscription_credits(self, change: CreditPeriodChange) -> EntryResult:
        """D15: what is left of the period's subscription credits is removed (no rollover),
        whatever the expiry says. A period without credits records a forfeit of 0."""
        at = require_utc(change.at, "at")

        def write(session: Session) -> EntryResult:
            found = store.lots(session, change.customer_id,
                               subscription_id=change.subscription_id,
                               period_key=change.period_key)
            takes = [credits.Take(lot.id, lot.kind, lot.remaining) for lot in found]
            return store.append(session, CreditEntry(
                customer_id=change.customer_id, entry_type="forfeit",
                idempotency_key=change.idempotency_key, amount=sum(t.amount for t in takes),
                occurred_at=at, subscription_id=change.subscription_id,
                period_key=change.period_key), [(take, None) for take in takes])

        return self._record(_Expect(change.customer_id, "forfeit"), change.idempotency_key,
                            write)

    def lock_purchased(self, change: CreditPeriodChange) -> EntryResult:
        """D16: the paid term ended; purchased credits stop funding usage incurred from
        ``change.at`` on. Locking a locked account keeps the earlier lock instant. Recorded
        under every policy; ``keep`` ignores it when reading."""
        return self._mark("lock", change)

    def unlock_purchased(self, change: CreditPeriodChange) -> EntryResult:
        """D16: reactivation or resubscription; purchased credits (not past their expiry)
        fund new work again, after settling outstanding usage (D17)."""
        return self._mark("unlock", change)

    def _mark(self, entry_type: str, change: CreditPeriodChange) -> EntryResult:
        at = require_utc(change.at, "at")

        def write(session: Session) -> EntryResult:
            result = store.append(session, CreditEntry(
                customer_id=change.customer_id, entry_type=entry_type,
                idempotency_key=change.idempotency_key, amount=0, occurred_at=at,
                subscription_id=change.subscription_id, period_key=change.period_key))
            if entry_type == "unlock":
                self._settle(session, change.customer_id, at, f"{change.idempotency_key}:settle")
            return result

        return self._record(_Expect(change.customer_id, entry_type), change.idempotency_key,
                            write)

    # Spending ----------------------------------------------------------------------------------

    def debit(self, customer_id: str, amount: int, idempotency_key: str,
              incurred_at: datetime) -> EntryResult:
        """New work: all or nothing. Raises InsufficientCredits (with what is available) and
        records nothing when the eligible credits do not cover ``amount``."""
        return self._consume("debit", customer_id, amount, idempotency_key, incurred_at)

    def report_usage(self, customer_id: str, amount: int, idempotency_key: str,
                     incurred_at: datetime) -> EntryResult:
        """Usage already incurred (metered): pays what it can now, records the rest as
        outstanding (``result.outstanding``) to be settled later. Never goes negative."""
        return self._consume("usage", customer_id, amount, idempotency_key, incurred_at)

    def _consume(self, entry_type: str, customer_id: str, amount: int, key: str,
                 incurred_at: datetime) -> EntryResult:
        at = require_utc(incurred_at, "incurred_at")

        def write(session: Session) -> EntryResult:
            takes = credits.spend(store.lots(session, customer_id, live_at=at), amount,
                                  live_at=at, incurred_at=at,
                                  locked_since=store.locked_since(session, customer_id),
                                  policy=self.policy)
            paid = sum(take.amount for take in takes)
            if entry_type == "debit" and paid < amount:
                raise InsufficientCredits(customer_id, amount, paid)
            return store.append(session, CreditEntry(
                customer_id=customer_id, entry_type=entry_type, idempotency_key=key,
                amount=amount, shortfall=amount - paid, occurred_at=at),
                [(take, store.PAYS_SELF) for take in takes])

        return self._record(_Expect(customer_id, entry_type, amount=_positive(amount)), key,
                            write)

    def settle_outstanding(self, customer_id: str, at: datetime) -> EntryResult | None:
        """D17: pay outstanding usage, oldest first, with the credits live at ``at``; locked
        purchased credits pay only usage incurred before the lock. None when nothing could be
        settled. Grants, top-ups and unlocks already do this; call it after time-based changes
        (e.g. a late-starting lot becoming valid)."""
        at = require_utc(at, "at")
        key = f"{customer_id}:settle:{at.isoformat()}"
        return self._record(_Expect(customer_id, "settle"), key,
                            lambda session: self._settle(session, customer_id, at, key))

    def _settle(self, session: Session, customer_id: str, at: datetime,
                key: str) -> EntryResult | None:
        owed = store.debts(session, customer_id)
        if not owed:
            return None
        pairs = credits.settle(store.lots(session, customer_id, live_at=at), owed, at=at,
                               locked_since=store.locked_since(session, customer_id),
                               policy=self.policy)
        if not pairs:
            return None
        return store.append(session, CreditEntry(
            customer_id=customer_id, entry_type="settle", idempotency_key=key,
            amount=sum(take.amount for _, take in pairs), occurred_at=at),
            [(take, debt.id) for debt, take in pairs])

    # Reads ---------------------------------------------------------------------------------------

    def balances(self, customer_id: str, at: datetime) -> Balances:
        """What the customer holds at ``at``: lots live at ``at`` minus everything recorded
        against them so far (not a replay of history as of ``at``). D20: only grants, forfeits,
        locks and spending change it; scheduling a cancellation does not."""
        at = require_utc(at, "at")
        with store.snapshot(self.engine) as session:
            held = credits.holdings(store.lots(session, customer_id, live_at=at), at,
                                    store.locked_since(session, customer_id), self.policy)
            owed = sum(debt.open for debt in store.debts(session, customer_id))
        return Balances(customer_id=customer_id, at=at, **held, outstanding=owed,
                        spendable=held["subscription"] + held["free_daily"] + held["purchased"])

    def outstanding(self, customer_id: str) -> int:
        """Unpaid usage in credits (D17, D23)."""
        with store.snapshot(self.engine) as session:
            return sum(debt.open for debt in store.debts(session, customer_id))

    def has_outstanding(self, customer_id: str) -> bool:
        """D22: an organization with unsettled usage may not be deleted."""
        return self.outstanding(customer_id) > 0

    def auto_recharge_due(self, customer_id: str, at: datetime, paid_term: bool) -> int:
        """D19 with this deployment's threshold and amount: credits to buy now (0 = none).
        ``paid_term`` comes from domain.credits.in_paid_term(subscription status)."""
        return credits.auto_recharge_due(self.balances(customer_id, at).spendable,
                                         self.settings.auto_recharge_threshold,
                                         self.settings.auto_recharge_amount, paid_term)

    # Idempotency ---------------------------------------------------------------------------------

    def _record(self, expect: _Expect, key: str, write: Callable[[Session], T]) -> T:
        """Apply ``write`` once per key under the account lock; replay the recorded result."""
        _check_ids(expect.customer_id, key)
        try:
            with store.account_transaction(self.engine, expect.customer_id) as session:
                found = store.find_entry(session, key)
                return write(session) if found is None else _replay(session, found, expect)
        except IntegrityError:
            with store.snapshot(self.engine) as session:
                found = store.find_entry(session, key)
                if found is None:
                    raise
                return _replay(session, found, expect)


def _replay(session: Session, entry: CreditEntry, expect: _Expect) -> EntryResult:
    if not expect.matches(entry):
        raise IdempotencyConflict(
            entry.idempotency_key,
            f"{entry.entry_type} {entry.credit_kind or ''} of {entry.amount} for "
            f"{entry.customer_id}",
            f"{expect.entry_type} {expect.credit_kind or ''} of {expect.amount} for "
            f"{expect.customer_id}")
    return store.entry_result(session, entry)


def _positive(amount: int) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise RequestInvalid("invalid_amount", f"amount must be a positive integer, got "
                             f"{amount!r}", field="amount")
    return amount


def _check_ids(customer_id: str, key: str) -> None:
    if not customer_id or len(customer_id) > MAX_CUSTOMER_ID_LENGTH:
        raise RequestInvalid("invalid_customer_id", f"customer ids are 1-"
                             f"{MAX_CUSTOMER_ID_LENGTH} characters", field="customer_id")
    if not key or len(key) > MAX_KEY_LENGTH:
        raise RequestInvalid("invalid_idempotency_key",
                             f"idempotency keys are 1-{MAX_KEY_LENGTH} characters",
                             field="idempotency_key")
