"""domain.credits without a database: spending order, expiry, locks, D19 auto-recharge."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.credits import (
    CREDIT_KINDS, Debt, Lot, auto_recharge_due, free_daily_window, holdings, in_paid_term,
    settle, spend,
)
from domain.model import Status

T0 = datetime(2025, 1, 1, tzinfo=UTC)
D = timedelta(days=1)


def order(lots, *, at=T0, locked_since=None, policy="lock", incurred_at=None):
    takes = spend(lots, 10**9, live_at=at, incurred_at=incurred_at or at,
                  locked_since=locked_since, policy=policy)
    return [t.lot_id for t in takes]


def test_soonest_expiry_first_never_expiring_last():
    lots = [Lot(1, "purchased", 5, T0, None), Lot(2, "purchased", 5, T0, T0 + 9 * D),
            Lot(3, "subscription", 5, T0, T0 + 30 * D), Lot(4, "free_daily", 5, T0, T0 + D)]
    assert order(lots) == [4, 2, 3, 1]


def test_ties_subscription_then_free_daily_then_purchased_then_oldest():
    end = T0 + D
    lots = [Lot(1, "purchased", 5, T0, end), Lot(2, "free_daily", 5, T0, end),
            Lot(3, "subscription", 5, T0, end), Lot(4, "purchased", 5, T0 - D, end),
            Lot(5, "purchased", 5, T0 - D, None), Lot(6, "subscription", 5, T0 - D, None)]
    assert order(lots) == [3, 2, 4, 1, 6, 5]


def test_not_yet_valid_and_expired_lots_are_skipped():
    lots = [Lot(1, "purchased", 5, T0 + D, None), Lot(2, "subscription", 5, T0 - 2 * D, T0),
            Lot(3, "purchased", 5, T0, None)]
    assert order(lots) == [3]


def test_lock_excludes_purchased_for_usage_at_or_after_the_lock():
    lots = [Lot(1, "purchased", 5, T0 - D, None), Lot(2, "free_daily", 5, T0, T0 + D)]
    assert order(lots, locked_since=T0) == [2]
    assert order(lots, locked_since=T0 + D) == [1, 2]  # D17: incurred before the lock, locked first
    assert order(lots, locked_since=T0, policy="keep") == [2, 1]


def test_keep_policy_ignores_purchased_expiry():
    lots = [Lot(1, "purchased", 5, T0 - 9 * D, T0 - D)]
    assert order(lots, policy="lock") == []
    assert order(lots, policy="keep") == [1]


def test_spend_takes_at_most_what_is_asked_and_available():
    lots = [Lot(1, "subscription", 5, T0, T0 + D), Lot(2, "purchased", 5, T0, None)]
    takes = spend(lots, 7, live_at=T0, incurred_at=T0, locked_since=None, policy="lock")
    assert [(t.lot_id, t.amount) for t in takes] == [(1, 5), (2, 2)]


def test_settle_pays_oldest_debt_first_and_locked_credits_only_pre_lock_debts():
    lots = [Lot(1, "purchased", 10, T0 - 5 * D, None)]
    debts = [Debt(8, T0 + D, 4), Debt(7, T0 - D, 3)]
    paid = settle(lots, debts, at=T0 + 2 * D, locked_since=T0, policy="lock")
    assert [(d.id, t.amount) for d, t in paid] == [(7, 3)]
    paid = settle(lots, debts, at=T0 + 2 * D, locked_since=None, policy="lock")
    assert [(d.id, t.amount) for d, t in paid] == [(7, 3), (8, 4)]


def test_holdings_split_locked_purchased():
    lots = [Lot(1, "purchased", 10, T0 - D, None), Lot(2, "free_daily", 3, T0, T0 + D),
            Lot(3, "subscription", 4, T0 - D, T0)]  # expired at T0
    assert holdings(lots, T0, T0, "lock") == {
        "subscription": 0, "free_daily": 3, "purchased": 0, "locked_purchased": 10}
    assert holdings(lots, T0, T0, "keep")["purchased"] == 10
    assert holdings(lots, T0 - timedelta(seconds=1), T0, "lock")["purchased"] == 10


def test_free_daily_window_is_the_utc_day():
    assert free_daily_window(date(2025, 3, 9)) == (datetime(2025, 3, 9, tzinfo=UTC),
                                                   datetime(2025, 3, 10, tzinfo=UTC))


@pytest.mark.parametrize("status,extension,expected", [
    (Status.ACTIVE, False, True), (Status.NON_RENEWING, False, True),
    (Status.NON_RENEWING, True, False), (Status.CANCELED, False, False),
    (Status.PAST_DUE, False, False), (Status.TRIALING, False, False),
    (Status.UNPAID, False, False), ("active", False, True),
])
def test_in_paid_term(status, extension, expected):
    assert in_paid_term(status, extension) is expected


@pytest.mark.parametrize("balance,threshold,amount,paid,expected", [
    (9, 10, 500, True, 500),    # below the threshold while active / cancelling
    (10, 10, 500, True, 0),     # at the threshold: not below
    (0, 10, 500, False, 0),     # D19: stops when the paid term ends
    (0, 10, 0, True, 0),        # amount 0 disables it
])
def test_auto_recharge_due(balance, threshold, amount, paid, expected):
    assert auto_recharge_due(balance, threshold, amount, paid) == expected


lot_strategy = st.builds(
    Lot, id=st.integers(1, 10**6), kind=st.sampled_from(CREDIT_KINDS),
    remaining=st.integers(0, 50), valid_from=st.sampled_from([T0 - D, T0, T0 + D]),
    expires_at=st.sampled_from([None, T0, T0 + D, T0 + 2 * D]))


@given(lots=st.lists(lot_strategy, max_size=8, unique_by=lambda lot: lot.id),
       amount=st.integers(1, 200), locked=st.booleans(), policy=st.sampled_from(["lock", "keep"]))
def test_spend_never_overdraws_and_takes_all_it_can(lots, amount, locked, policy):
    locked_since = T0 - D if locked else None
    takes = spend(lots, amount, live_at=T0, incurred_at=T0, locked_since=locked_since,
                  policy=policy)
    by_id = {lot.id: lot for lot in lots}
    assert all(0 < t.amount <= by_id[t.lot_id].remaining for t in takes)
    assert len({t.lot_id for t in takes}) == len(takes)
    usable = holdings(lots, T0, locked_since, policy)
    total = usable["subscription"] + usable["free_daily"] + usable["purchased"]
    assert sum(t.amount for t in takes) == min(amount, total)
