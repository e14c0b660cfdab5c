"""Random sequences of grants, top-ups, debits, metered usage, forfeits and retries against
the real database: the ledger's books always balance and never go negative."""

from __future__ import annotations

import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import InsufficientCredits
from tests.ledger.conftest import T0, days, forfeit_of, grant

NOW = T0 + days(1)
operations = st.lists(st.one_of(
    st.tuples(st.just("grant"), st.integers(1, 100)),
    st.tuples(st.just("topup"), st.integers(1, 100)),
    st.tuples(st.just("debit"), st.integers(1, 150)),
    st.tuples(st.just("usage"), st.integers(1, 150)),
    st.tuples(st.just("forfeit"), st.integers(0, 20)),
    st.tuples(st.just("retry"), st.integers(0, 20)),
), min_size=1, max_size=14)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_books_balance(ledger, ops):
    customer = f"cus_{uuid.uuid4().hex[:10]}"
    granted = taken = shortfall = 0
    grants, done, seen = [], [], set()  # done: (call, its result) for retries
    for n, (op, value) in enumerate(ops):
        before = ledger.balances(customer, NOW)
        if op == "grant":
            g = grant(value, T0, T0 + days(30), customer=customer, subscription=f"sub_{customer}",
                      period=f"p{n}")
            call = (ledger.grant_subscription_credits, g)
            grants.append(g)
            granted += value
        elif op == "topup":
            call = (ledger.purchase_topup, customer, value, f"{customer}:top{n}", T0)
            granted += value
        elif op == "forfeit":
            if not grants:
                continue
            call = (ledger.forfeit_subscription_credits, forfeit_of(grants[value % len(grants)],
                                                                    at=NOW))
        elif op == "retry":
            if not done:
                continue
            (call, original) = done[value % len(done)]
            assert call[0](*call[1:]) == original
            assert ledger.balances(customer, NOW) == before
            continue
        elif op == "debit":
            call = (ledger.debit, customer, value, f"{customer}:debit{n}", NOW)
        else:
            call = (ledger.report_usage, customer, value, f"{customer}:usage{n}", NOW)
        try:
            result = call[0](*call[1:])
        except InsufficientCredits as refused:  # strict debits only: all or nothing
            assert op == "debit" and value > before.spendable == refused.available
            assert ledger.balances(customer, NOW) == before
            continue
        if op == "debit":
            assert result.applied == value <= before.spendable
        done.append((call, result))
        if result.entry_id in seen:  # a second forfeit of one period is a retry of the first
            assert op == "forfeit"
            continue
        seen.add(result.entry_id)
        if op in ("debit", "usage", "forfeit"):
            taken += result.applied
        if op == "usage":
            assert result.applied == min(value, before.spendable)
            shortfall += result.outstanding
        after = ledger.balances(customer, NOW)
        settled = shortfall - after.outstanding
        assert after.spendable >= 0 and after.outstanding >= 0 and settled >= 0
        assert after.spendable == granted - taken - settled
        assert after.outstanding == 0 or after.spendable == 0  # debts are paid first
