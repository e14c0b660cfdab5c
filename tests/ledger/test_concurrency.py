"""Debits on one account serialize: concurrent writers (threads, each with its own session and
connection) can never overdraw or apply an idempotency key twice. Runs on SQLite (BEGIN
IMMEDIATE) and PostgreSQL (SELECT ... FOR UPDATE on the account row)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ledger.errors import InsufficientCredits
from tests.ledger.conftest import T0, days

WORKERS = 100


def _race(calls):
    """Run the callables at once (released together by a barrier); return results/errors."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        try:
            return call()
        except InsufficientCredits as refused:
            return refused

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_debits_never_overdraw(ledger):
    ledger.purchase_topup("cus_1", 375, "pi_1", at=T0)
    at = T0 + days(1)
    outcomes = _race([
        lambda i=i: ledger.debit("cus_1", 10, f"job-{i}", at) for i in range(WORKERS)])
    succeeded = [o for o in outcomes if not isinstance(o, InsufficientCredits)]
    refused = [o for o in outcomes if isinstance(o, InsufficientCredits)]
    assert len(succeeded) == 37 and len(refused) == 63
    assert all(r.available == 5 for r in refused)  # each refusal saw the exact remainder
    balances = ledger.balances("cus_1", at)
    assert balances.spendable == 5 and balances.outstanding == 0


def test_concurrent_duplicates_apply_once(ledger):
    ledger.purchase_topup("cus_1", 1000, "pi_1", at=T0)
    at = T0 + days(1)
    outcomes = _race([lambda: ledger.debit("cus_1", 70, "same-job", at)] * 20
                     + [lambda: ledger.purchase_topup("cus_1", 5, "same-topup", at)] * 20)
    assert len({o.entry_id for o in outcomes[:20]}) == 1
    assert len({o.entry_id for o in outcomes[20:]}) == 1
    assert ledger.balances("cus_1", at).spendable == 1000 - 70 + 5
