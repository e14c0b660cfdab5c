"""Debits and metered usage: spending order, never overdraw, idempotency, outstanding usage
and debts-first settlement (D17, D22). Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger.errors import IdempotencyConflict, InsufficientCredits
from tests.ledger.conftest import T0, days, grant

NOON = datetime(2025, 1, 1, 12, tzinfo=UTC)


def kinds(result):
    return [(u.kind, u.amount) for u in result.uses]


def test_spending_order_soonest_expiry_then_kind(ledger):
    ledger.purchase_topup("cus_1", 100, "forever", at=T0)                         # never expires
    ledger.purchase_topup("cus_1", 100, "ends-jan-31", at=T0, expires_at=T0 + days(31))
    ledger.grant_subscription_credits(grant(100, T0, T0 + days(31)))               # same expiry
    ledger.grant_free_daily("cus_1", date(2025, 1, 1))                             # ends tonight
    result = ledger.debit("cus_1", 350, "big-job", NOON)
    assert kinds(result) == [("free_daily", 100), ("subscription", 100), ("purchased", 100),
                             ("purchased", 50)]
    assert result.uses[-1].lot_id == 1  # the never-expiring top-up went last
    assert ledger.balances("cus_1", NOON).purchased == 50


def test_strict_debit_never_overdraws(ledger):
    ledger.purchase_topup("cus_1", 100, "pi_1", at=T0)
    ledger.debit("cus_1", 60, "job-1", NOON)
    with pytest.raises(InsufficientCredits) as refused:
        ledger.debit("cus_1", 41, "job-2", NOON)
    assert (refused.value.requested, refused.value.available) == (41, 40)
    assert refused.value.code == "insufficient_credits"
    balances = ledger.balances("cus_1", NOON)
    assert balances.spendable == 40 and balances.outstanding == 0
    # A refused debit records nothing: the same key succeeds once credits arrive.
    ledger.purchase_topup("cus_1", 10, "pi_2", at=NOON)
    assert ledger.debit("cus_1", 41, "job-2", NOON).applied == 41
    assert ledger.balances("cus_1", NOON).spendable == 9


def test_duplicate_debit_returns_the_original_and_applies_once(ledger):
    ledger.purchase_topup("cus_1", 100, "pi_1", at=T0)
    first = ledger.debit("cus_1", 70, "job-1", NOON)
    # The replay is answered from the record even though 30 would no longer cover it.
    assert ledger.debit("cus_1", 70, "job-1", NOON) == first
    assert ledger.balances("cus_1", NOON).spendable == 30
    with pytest.raises(IdempotencyConflict):
        ledger.debit("cus_1", 71, "job-1", NOON)
    with pytest.raises(IdempotencyConflict):
        ledger.report_usage("cus_1", 70, "job-1", NOON)


def test_debit_from_an_unknown_customer_is_refused(ledger):
    with pytest.raises(InsufficientCredits) as refused:
        ledger.debit("cus_new", 1, "job-1", NOON)
    assert refused.value.available == 0
    assert ledger.balances("cus_new", NOON).spendable == 0


def test_report_usage_pays_what_it_can_and_records_the_rest(ledger):
    ledger.purchase_topup("cus_1", 50, "pi_1", at=T0)
    usage = ledger.report_usage("cus_1", 80, "meter-1", NOON)
    assert (usage.amount, usage.applied, usage.outstanding) == (80, 50, 30)
    assert ledger.report_usage("cus_1", 80, "meter-1", NOON) == usage
    balances = ledger.balances("cus_1", NOON)
    assert (balances.spendable, balances.outstanding) == (0, 30)
    assert ledger.has_outstanding("cus_1")


def test_new_credits_settle_outstanding_usage_first(ledger):
    ledger.report_usage("cus_1", 30, "meter-1", T0)
    ledger.report_usage("cus_1", 20, "meter-2", T0 + days(1))
    assert ledger.outstanding("cus_1") == 50
    ledger.purchase_topup("cus_1", 40, "pi_1", at=T0 + days(2))   # pays meter-1, then 10 of 2
    balances = ledger.balances("cus_1", T0 + days(2))
    assert (balances.spendable, balances.outstanding) == (0, 10)
    ledger.grant_subscription_credits(grant(100, T0 + days(3), T0 + days(33)))
    balances = ledger.balances("cus_1", T0 + days(3))
    assert (balances.subscription, balances.outstanding) == (90, 0)
    assert not ledger.has_outstanding("cus_1")


def test_settle_outstanding_uses_lots_that_became_valid_later(ledger):
    # A top-up recorded with a start after the usage cannot pay it at the time it is recorded.
    ledger.purchase_topup("cus_1", 100, "pi_future", at=T0 + days(5))
    usage = ledger.report_usage("cus_1", 30, "meter-1", T0)
    assert usage.outstanding == 30
    assert ledger.settle_outstanding("cus_1", T0 + days(1)) is None  # not valid yet
    settled = ledger.settle_outstanding("cus_1", T0 + days(5))
    assert settled.entry_type == "settle" and settled.applied == 30
    assert ledger.settle_outstanding("cus_1", T0 + days(5)) == settled  # replay
    assert ledger.settle_outstanding("cus_1", T0 + days(6)) is None     # nothing left
    assert ledger.balances("cus_1", T0 + days(6)).purchased == 70
