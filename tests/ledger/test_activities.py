"""The workflow's credit activities at period boundaries are idempotent per (subscription,
period): Temporal may run an activity again after a worker crash or a lost completion, and the
ledger's unique idempotency key must turn that into a replay of the first result."""

from __future__ import annotations

from activities.credits import CreditActivities
from tests.ledger.conftest import T0, change, days, forfeit_of, grant


def test_retried_boundary_activities_move_credits_once(ledger):
    acts = CreditActivities(ledger)
    g = grant(1000, T0, T0 + days(31))
    first = acts.grant_period_credits(g)
    again = acts.grant_period_credits(g)
    assert again.entry_id == first.entry_id
    assert ledger.balances("cus_1", T0 + days(1)).subscription == 1000

    ledger.debit("cus_1", 300, "use-1", T0 + days(2))
    f1 = acts.forfeit_period_credits(forfeit_of(g))
    f2 = acts.forfeit_period_credits(forfeit_of(g))
    assert f1.entry_id == f2.entry_id and f1.applied == 700
    assert ledger.balances("cus_1", T0 + days(31)).subscription == 0


def test_lock_and_unlock_are_idempotent_and_ordered(ledger):
    acts = CreditActivities(ledger)
    ledger.purchase_topup("cus_1", 500, "topup-1", T0)
    end = T0 + days(31)
    lock = change("sub_1:lock:202502", end, period="202502")
    assert acts.lock_purchased_credits(lock).entry_id == acts.lock_purchased_credits(lock).entry_id
    locked = ledger.balances("cus_1", end + days(1))
    assert (locked.purchased, locked.locked_purchased) == (0, 500)

    unlock = change("sub_2:unlock:202503", end + days(2), subscription="sub_2",
                    period="202503")
    acts.unlock_purchased_credits(unlock)
    acts.unlock_purchased_credits(unlock)
    back = ledger.balances("cus_1", end + days(3))
    assert (back.purchased, back.locked_purchased) == (500, 0)


def test_a_plan_without_included_credits_grants_nothing(ledger):
    acts = CreditActivities(ledger)
    assert acts.grant_period_credits(grant(0, T0, T0 + days(31))) is None
    assert ledger.balances("cus_1", T0 + days(1)).subscription == 0
