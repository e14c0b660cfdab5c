"""Grants and their ends: D15 subscription credits, D16 top-ups, D18 free daily allowance,
idempotency of every grant, UTC-only times. Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.errors import RequestInvalid
from ledger.errors import IdempotencyConflict, InsufficientCredits
from tests.ledger.conftest import T0, days, forfeit_of, grant


def test_subscription_grant_is_idempotent(ledger):
    g = grant(500, T0, T0 + days(31))
    first = ledger.grant_subscription_credits(g)
    again = ledger.grant_subscription_credits(g)
    assert again == first
    assert first.amount == first.applied == 500
    assert ledger.balances("cus_1", T0).subscription == 500


def test_replayed_key_with_other_parameters_is_refused(ledger):
    g = grant(500, T0, T0 + days(31))
    ledger.grant_subscription_credits(g)
    with pytest.raises(IdempotencyConflict):
        ledger.grant_subscription_credits(g.model_copy(update={"amount": 600}))
    with pytest.raises(IdempotencyConflict):
        ledger.purchase_topup("cus_1", 500, g.idempotency_key, at=T0)
    with pytest.raises(IdempotencyConflict):
        ledger.grant_subscription_credits(g.model_copy(update={"customer_id": "cus_2"}))
    assert ledger.balances("cus_1", T0).spendable == 500
    assert ledger.balances("cus_2", T0).spendable == 0


def test_subscription_credits_live_only_within_their_period(ledger):
    ledger.grant_subscription_credits(grant(500, T0, T0 + days(31)))
    assert ledger.balances("cus_1", T0 - days(1)).spendable == 0
    with pytest.raises(InsufficientCredits):
        ledger.debit("cus_1", 1, "before-start", T0 - days(1))
    assert ledger.balances("cus_1", T0 + days(30)).subscription == 500
    assert ledger.balances("cus_1", T0 + days(31)).subscription == 0  # end is exclusive


def test_forfeit_at_period_end_removes_what_is_left(ledger):
    g = grant(500, T0, T0 + days(31))
    lot = ledger.grant_subscription_credits(g)
    ledger.debit("cus_1", 120, "work-1", T0 + days(3))
    forfeited = ledger.forfeit_subscription_credits(forfeit_of(g))
    assert forfeited.entry_type == "forfeit"
    assert forfeited.amount == forfeited.applied == 380
    assert [(u.lot_id, u.amount) for u in forfeited.uses] == [(lot.entry_id, 380)]
    assert ledger.forfeit_subscription_credits(forfeit_of(g)) == forfeited  # idempotent
    # Even looking back into the period the lot is empty now: no rollover, no refund (D15).
    assert ledger.balances("cus_1", T0 + days(10)).subscription == 0


def test_forfeit_mid_period_on_immediate_cancel_and_only_that_period(ledger):
    g1 = grant(100, T0, T0 + days(31), period="p1")
    g2 = grant(200, T0 + days(31), T0 + days(59), period="p2")
    ledger.grant_subscription_credits(g1)
    ledger.grant_subscription_credits(g2)
    assert ledger.forfeit_subscription_credits(forfeit_of(g1, at=T0 + days(5))).applied == 100
    assert ledger.balances("cus_1", T0 + days(40)).subscription == 200


def test_forfeit_without_a_grant_records_zero(ledger):
    g = grant(100, T0, T0 + days(31))
    assert ledger.forfeit_subscription_credits(forfeit_of(g)).applied == 0


def test_topup_is_idempotent_and_expires_at_its_own_expiry(ledger):
    first = ledger.purchase_topup("cus_1", 300, "pi_1", at=T0, expires_at=T0 + days(90))
    assert ledger.purchase_topup("cus_1", 300, "pi_1", at=T0, expires_at=T0 + days(90)) == first
    ledger.purchase_topup("cus_1", 50, "pi_2", at=T0 + days(1))
    assert ledger.balances("cus_1", T0 + days(89)).purchased == 350
    assert ledger.balances("cus_1", T0 + days(90)).purchased == 50


def test_free_daily_allowance(ledger, make_ledger):
    first = ledger.grant_free_daily("cus_1", date(2025, 1, 1))
    assert first.amount == 100 and first.credit_kind == "free_daily"
    assert ledger.grant_free_daily("cus_1", date(2025, 1, 1)) == first  # once per day
    noon = datetime(2025, 1, 1, 12, tzinfo=UTC)
    ledger.debit("cus_1", 30, "img-1", noon)
    assert ledger.balances("cus_1", noon).free_daily == 70
    # Unused credits end with the UTC day; the next day brings a fresh 100 (not 170).
    ledger.grant_free_daily("cus_1", date(2025, 1, 2))
    assert ledger.balances("cus_1", datetime(2025, 1, 2, tzinfo=UTC)).free_daily == 100
    # Another customer and another allowance setting.
    assert make_ledger(free_daily_allowance=25).grant_free_daily("cus_2", noon).amount == 25
    assert make_ledger(free_daily_allowance=0).grant_free_daily("cus_3", noon) is None


def test_naive_datetimes_and_bad_amounts_are_rejected(ledger):
    naive = datetime(2025, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.debit("cus_1", 1, "k1", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.balances("cus_1", naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.grant_subscription_credits(grant(5, naive, naive.replace(month=2)))
    for amount in (0, -5, 1.5, True):
        with pytest.raises(RequestInvalid):
            ledger.purchase_topup("cus_1", amount, f"k-{amount}", at=T0)
    with pytest.raises(RequestInvalid):
        ledger.purchase_topup("cus_1", 5, "k-exp", at=T0, expires_at=T0)
    with pytest.raises(RequestInvalid):
        ledger.purchase_topup("cus_1", 5, "x" * 201, at=T0)
    assert ledger.balances("cus_1", T0).spendable == 0
