"""A year of renewals, end to end through the ledger, against balances computed by hand.

Plan: 1000 credits per monthly period, policy ``lock``, auto-recharge 500 below 200.
sub_y pays Jan-Jun (6 periods), is cancelled at the end of June (forfeit + lock), the customer
lives on the free plan for two weeks, then resubscribes as sub_y2 anchored on Jul 15 (unlock),
which pays 6 more periods: 12 paid periods. Every call is then replayed (as Temporal retries
would) and must change nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.credits import in_paid_term
from domain.model import Status
from tests.ledger.conftest import change, forfeit_of, grant


def at(month: int, day: int, hour: int = 12, year: int = 2025) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def start(month: int, day: int = 1, year: int = 2025) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


C = "cus_y"
SUB_Y = [grant(1000, start(m), start(m + 1), customer=C, subscription="sub_y")
         for m in range(1, 7)]                                   # Jan..Jun
SUB_Y2 = [grant(1000, start(m, 15), start(m + 1, 15) if m < 12 else start(1, 15, 2026),
                customer=C, subscription="sub_y2") for m in range(7, 13)]  # Jul 15..Jan 15


def test_a_year_of_renewals(make_ledger):
    ledger = make_ledger(topup_policy="lock", auto_recharge_threshold=200,
                         auto_recharge_amount=500)
    calls = []

    def do(method, *args, **kwargs):
        result = method(*args, **kwargs)
        calls.append((method, args, kwargs, result))
        return result

    def period(g, *work):
        """Grant, run the period's work, forfeit at its end."""
        do(ledger.grant_subscription_credits, g)
        for step in work:
            step()
        return do(ledger.forfeit_subscription_credits, forfeit_of(g)).applied

    def debit(amount, key, when):
        return do(ledger.debit, C, amount, key, when)

    def topup(amount, key, when, expires_at=None):
        return do(ledger.purchase_topup, C, amount, key, when, expires_at=expires_at)

    forfeited = []
    # Jan: top-up A 500 (never expires). 700 of work: subscription credits (end Feb 1) first.
    forfeited.append(period(SUB_Y[0], lambda: topup(500, "pi_A", at(1, 10)),
                            lambda: debit(700, "jan", at(1, 15))))              # forfeit 300
    # Feb: 1200 of work = 1000 subscription + 200 from A (A: 300 left).
    forfeited.append(period(SUB_Y[1], lambda: debit(1200, "feb", at(2, 20))))    # forfeit 0
    # Mar: top-up B 400 expiring Apr 15. 900 of work: subscription (ends Apr 1) before B.
    forfeited.append(period(SUB_Y[2], lambda: topup(400, "pi_B", at(3, 5), start(4, 15)),
                            lambda: debit(900, "mar", at(3, 10))))              # forfeit 100
    # Apr: 1300 of work: B (ends Apr 15) before subscription (ends May 1): B 400 + sub 900.
    forfeited.append(period(SUB_Y[3], lambda: debit(1300, "apr", at(4, 10))))    # forfeit 100
    # May: 1500 metered: sub 1000 + A 300 paid, 200 outstanding.
    may = []
    forfeited.append(period(SUB_Y[4], lambda: may.append(
        do(ledger.report_usage, C, 1500, "may-meter", at(5, 20)))))             # forfeit 0
    assert (may[0].applied, may[0].outstanding) == (1300, 200)
    # Jun: the grant settles May's 200 first (sub 800); 500 of work (sub 300); the customer
    # schedules a cancellation (nothing on the ledger, D20); top-up C 600 expiring Sep 1;
    # 100 of work from the subscription (ends Jul 1, before C). At the end: forfeit 200, lock.
    forfeited.append(period(SUB_Y[5], lambda: debit(500, "jun-1", at(6, 10)),
                            lambda: topup(600, "pi_C", at(6, 15), start(9, 1)),
                            lambda: debit(100, "jun-2", at(6, 20))))            # forfeit 200
    do(ledger.lock_purchased, change("sub_y:lock", start(7), customer=C, subscription="sub_y"))
    assert ledger.balances(C, start(7)).locked_purchased == 600

    # Free plan. Jul 2: late metered usage from Jun 30 (before the lock) is paid by locked C
    # (D17): C 530. 80 of new work from the free allowance (20 left, gone at midnight).
    do(ledger.grant_free_daily, C, date(2025, 7, 2))
    do(ledger.report_usage, C, 70, "jun-30-meter", at(6, 30, 23))
    debit(80, "jul-2", at(7, 2))
    # Jul 3: 150 metered after the lock: 100 free paid, 50 outstanding (C may not pay it).
    do(ledger.grant_free_daily, C, date(2025, 7, 3))
    do(ledger.report_usage, C, 150, "jul-3-meter", at(7, 3))
    mid = ledger.balances(C, at(7, 3))
    assert (mid.free_daily, mid.locked_purchased, mid.outstanding, mid.spendable) == (
        0, 530, 50, 0)
    assert ledger.has_outstanding(C)

    # Jul 15, resubscription as sub_y2: unlock first (settles the 50 from C: 480), then grant.
    do(ledger.unlock_purchased, change("sub_y2:unlock", start(7, 15), customer=C,
                                       subscription="sub_y2"))
    # p1: 300 of work from sub (ends Aug 15, before C); Aug 10: 900 = sub 700 + C 200 (C 280).
    forfeited.append(period(SUB_Y2[0], lambda: debit(300, "jul-20", at(7, 20)),
                            lambda: debit(900, "aug-10", at(8, 10))))           # forfeit 0
    # p2: C expires Sep 1 with 280 unused. Sep 5: 250 from sub (750 left).
    forfeited.append(period(SUB_Y2[1], lambda: debit(250, "sep-5", at(9, 5))))   # forfeit 750
    # p3: top-up D 1000 (never expires). 1200 of work: sub 1000 + D 200 (D 800).
    forfeited.append(period(SUB_Y2[2], lambda: topup(1000, "pi_D", at(9, 16)),
                            lambda: debit(1200, "sep-20", at(9, 20))))          # forfeit 0
    # p4: 400 of work, 600 forfeited.
    forfeited.append(period(SUB_Y2[3], lambda: debit(400, "oct-20", at(10, 20))))  # forfeit 600

    # p5: 900 of work (sub 100 + D 800 = 900 left: no recharge); 850 more = sub 100 + D 750
    # leaves 50 < 200: D19 recharge of 500 (top-up E, never expires).
    def recharge_check(expected):
        due = ledger.auto_recharge_due(C, at(11, 25), in_paid_term(Status.ACTIVE))
        assert due == expected
        if due:
            topup(due, "sub_y2:auto_recharge:1", at(11, 25))

    forfeited.append(period(SUB_Y2[4], lambda: debit(900, "nov-20", at(11, 20)),
                            lambda: recharge_check(0),
                            lambda: debit(850, "nov-25", at(11, 25)),
                            lambda: recharge_check(500)))                       # forfeit 0
    # p6 (Dec 15 - Jan 15): 300 of work from sub (700 left).
    do(ledger.grant_subscription_credits, SUB_Y2[5])
    debit(300, "dec-20", at(12, 20))

    assert forfeited == [300, 0, 100, 100, 0, 200, 0, 750, 0, 600, 0]
    expected = dict(subscription=700, free_daily=0, purchased=50 + 500, locked_purchased=0,
                    outstanding=0, spendable=1250)
    # Cross-check: granted 12*1000 + top-ups 500+400+600+1000+500 + free 2*100 = 15200;
    # forfeited 2050; expired unused 300 (C 280 on Sep 1, Jul 2's free 20);
    # spent 11600 (work, metered usage paid and settled) -> 15200 - 2050 - 300 - 11600 = 1250.
    assert sum(forfeited) == 2050
    new_year = start(1, 1, 2026)

    def final():
        return ledger.balances(C, new_year).model_dump(exclude={"customer_id", "at"})

    assert final() == expected

    # Every activity retried: same answers, nothing applied twice.
    for method, args, kwargs, result in calls:
        assert method(*args, **kwargs) == result
    assert final() == expected
