"""D16 lock/unlock of purchased credits under both policies, D17 settlement of pre-lock usage
by locked credits, D20 nothing changes while cancelling, D19 auto-recharge on the ledger.
Each test runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.credits import in_paid_term
from domain.model import Status
from ledger.errors import InsufficientCredits
from tests.ledger.conftest import T0, change, days, forfeit_of, grant

END = T0 + days(31)  # the paid term ends here
HOUR = timedelta(hours=1)


def end_paid_term(ledger, g):
    """What the workflow does when a cancellation takes effect (D15 + D16)."""
    ledger.forfeit_subscription_credits(forfeit_of(g))
    return ledger.lock_purchased(change("sub_1:lock", END))


def test_lock_policy_locks_purchased_credits_until_unlock(ledger):
    g = grant(100, T0, END)
    ledger.grant_subscription_credits(g)
    ledger.purchase_topup("cus_1", 200, "pi_1", at=T0)
    lock = end_paid_term(ledger, g)
    assert ledger.lock_purchased(change("sub_1:lock", END)) == lock  # idempotent
    after = ledger.balances("cus_1", END)
    assert (after.purchased, after.locked_purchased, after.spendable) == (0, 200, 0)
    with pytest.raises(InsufficientCredits) as refused:
        ledger.debit("cus_1", 1, "new-work", END + HOUR)
    assert refused.value.available == 0
    # Free-plan credits still fund new work; locked ones are not touched.
    ledger.grant_free_daily("cus_1", (END + days(1)).date())
    assert [u.kind for u in ledger.debit("cus_1", 60, "free-work", END + days(1)).uses] == [
        "free_daily"]
    # Resubscription/reactivation: purchased credits fund new work again.
    ledger.unlock_purchased(change("sub_2:unlock", END + days(10), subscription="sub_2"))
    back = ledger.balances("cus_1", END + days(10))
    assert (back.purchased, back.locked_purchased, back.spendable) == (200, 0, 200)
    assert ledger.debit("cus_1", 150, "pro-work", END + days(10)).applied == 150


def test_usage_incurred_before_the_lock_may_use_locked_credits(ledger):
    ledger.purchase_topup("cus_1", 200, "pi_1", at=T0)
    ledger.lock_purchased(change("sub_1:lock", END))
    ledger.grant_free_daily("cus_1", END.date())
    # Metered usage from the last hour of the paid term arrives after the lock (D17):
    late = ledger.report_usage("cus_1", 50, "meter-late", END - HOUR)
    assert [(u.kind, u.amount) for u in late.uses] == [("purchased", 50)]  # locked ones first
    assert late.outstanding == 0
    held = ledger.balances("cus_1", END + HOUR)
    assert (held.locked_purchased, held.free_daily) == (150, 100)


def test_locked_credits_settle_pre_lock_usage_but_not_post_lock_usage(ledger):
    ledger.report_usage("cus_1", 40, "meter-pre", END - days(1))     # nothing to pay it with
    ledger.lock_purchased(change("sub_1:lock", END))
    ledger.report_usage("cus_1", 25, "meter-post", END + days(1))    # incurred while locked
    assert ledger.outstanding("cus_1") == 65
    # A top-up bought while locked is locked too, but settles the pre-lock usage at once.
    ledger.purchase_topup("cus_1", 100, "pi_1", at=END + days(2))
    held = ledger.balances("cus_1", END + days(2))
    assert (held.locked_purchased, held.outstanding, held.spendable) == (60, 25, 0)
    assert ledger.settle_outstanding("cus_1", END + days(3)) is None  # post-lock: not eligible
    assert ledger.has_outstanding("cus_1")                           # D22 would refuse deletion
    # Unlocking settles the remaining usage before the credits fund new work.
    ledger.unlock_purchased(change("sub_1:unlock", END + days(4)))
    held = ledger.balances("cus_1", END + days(4))
    assert (held.purchased, held.locked_purchased, held.outstanding) == (35, 0, 0)
    assert not ledger.has_outstanding("cus_1")


def test_a_second_lock_keeps_the_first_lock_instant(ledger):
    ledger.purchase_topup("cus_1", 100, "pi_1", at=T0)
    ledger.lock_purchased(change("sub_1:lock", END))
    ledger.lock_purchased(change("sub_9:lock", END + days(5), subscription="sub_9"))
    with pytest.raises(InsufficientCredits):
        ledger.debit("cus_1", 10, "between-locks", END + days(1))
    assert ledger.debit("cus_1", 10, "before-locks", END - HOUR).applied == 10


def test_top_ups_still_expire_while_locked(ledger):
    ledger.purchase_topup("cus_1", 100, "pi_short", at=T0, expires_at=END + days(5))
    ledger.purchase_topup("cus_1", 30, "pi_forever", at=T0)
    ledger.lock_purchased(change("sub_1:lock", END))
    assert ledger.balances("cus_1", END + days(4)).locked_purchased == 130
    assert ledger.balances("cus_1", END + days(5)).locked_purchased == 30
    ledger.unlock_purchased(change("sub_1:unlock", END + days(10)))
    assert ledger.balances("cus_1", END + days(10)).purchased == 30  # expired ones do not return


def test_keep_policy_purchased_credits_stay_usable_and_never_expire(make_ledger):
    ledger = make_ledger(topup_policy="keep")
    g = grant(100, T0, END)
    ledger.grant_subscription_credits(g)
    ledger.purchase_topup("cus_1", 200, "pi_1", at=T0, expires_at=END + days(5))
    lock = end_paid_term(ledger, g)
    assert lock.entry_type == "lock"  # recorded, but the policy ignores it
    later = ledger.balances("cus_1", END + days(400))
    assert (later.purchased, later.locked_purchased, later.subscription) == (200, 0, 0)
    assert ledger.debit("cus_1", 150, "free-plan-work", END + days(400)).applied == 150
    ledger.unlock_purchased(change("sub_1:unlock", END + days(401)))  # harmless
    assert ledger.balances("cus_1", END + days(401)).purchased == 50


def test_nothing_changes_while_a_cancellation_is_scheduled(ledger):
    """D20/D2: scheduling a cancel calls nothing on the ledger; balances stay usable until
    the paid-through date, and auto-recharge stays available (D19)."""
    g = grant(100, T0, END)
    ledger.grant_subscription_credits(g)
    ledger.purchase_topup("cus_1", 50, "pi_1", at=T0)
    before = ledger.balances("cus_1", T0 + days(10))
    # ... the customer schedules a cancellation at period end here (status non_renewing) ...
    assert ledger.balances("cus_1", T0 + days(10)) == before
    assert ledger.debit("cus_1", 140, "last-day-work", END - HOUR).applied == 140
    assert ledger.balances("cus_1", END - HOUR).spendable == 10
    end_paid_term(ledger, g)
    assert ledger.balances("cus_1", END).locked_purchased == 10


def test_auto_recharge_due_from_the_ledger_balance(make_ledger):
    ledger = make_ledger(auto_recharge_threshold=100, auto_recharge_amount=500)
    ledger.purchase_topup("cus_1", 120, "pi_1", at=T0)
    cancelling = in_paid_term(Status.NON_RENEWING)
    assert ledger.auto_recharge_due("cus_1", T0, paid_term=cancelling) == 0  # 120 >= 100
    ledger.debit("cus_1", 30, "job-1", T0)
    assert ledger.auto_recharge_due("cus_1", T0, paid_term=cancelling) == 500
    # The payment succeeded elsewhere; the ledger records the credits under its key.
    ledger.purchase_topup("cus_1", 500, "sub_1:auto_recharge:1", at=T0)
    assert ledger.auto_recharge_due("cus_1", T0, paid_term=cancelling) == 0
    ledger.debit("cus_1", 550, "job-2", T0)
    assert ledger.auto_recharge_due("cus_1", T0, in_paid_term(Status.CANCELED)) == 0
    assert make_ledger().auto_recharge_due("cus_1", T0, paid_term=True) == 0  # disabled
