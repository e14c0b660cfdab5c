"""Invoice numbers are consecutive per organization: no gap, no duplicate, under concurrent
charges on PostgreSQL (row lock on the counter) and after a rolled-back transaction."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlmodel import select

from accounts import keys
from activities.types import ChargeRequest
from invoices import store as invoices
from invoices.models import Invoice
from store.engine import get_engine, session_scope


def topup(customer: str, key: str, amount: int = 500) -> ChargeRequest:
    return ChargeRequest(idempotency_key=key, subscription_id="", customer_id=customer,
                         amount=amount, currency="usd", description="credits",
                         purpose="topup", period_key="never")


def numbers(engine, organization: str) -> list[int]:
    with session_scope(engine) as session:
        return sorted(session.exec(select(Invoice.number).where(
            Invoice.organization_id == organization)).all())


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_fifty_concurrent_charges_number_their_invoices_without_gaps(db_url, service,
                                                                     new_customer,
                                                                     organization):
    """50 charges of one organization at once (plus each one's retry, a second organization
    charging meanwhile, and 10 transactions that take a number and then roll back), every
    charge through the real PaymentService.charge: the organization's numbers are exactly
    1..50, one per charge."""
    engine = get_engine(db_url)
    customers = [new_customer() for _ in range(5)]
    second, _ = keys.create_organization_with_owner(engine, "Other")
    other_org = new_customer(org=second.id)
    start = threading.Barrier(25)

    def charge(i: int):
        if i < 25:
            start.wait(timeout=30)  # the first 25 begin at the same instant
        if i % 5 == 0:
            _numbered_then_rolled_back(engine, customers[0], f"aborted:{i}")
        request = topup(customers[i % 5], f"topup:{i}")
        first = service.charge(request)
        assert service.charge(request) == first  # a retry: the same charge, the same invoice
        if i % 10 == 0:
            service.charge(topup(other_org, f"other:{i}"))
        return first

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(charge, range(50)))

    assert {r.status for r in results} == {"succeeded"}
    assert numbers(engine, organization) == list(range(1, 51))
    assert numbers(engine, second.id) == list(range(1, 6))
    paid = invoices.list_invoices(engine, organization, limit=100)
    assert {i.payment_intent_id for i in paid} == {r.payment_intent_id for r in results}
    assert {i.status for i in paid} == {"paid"}


class Abort(Exception):
    pass


def _numbered_then_rolled_back(engine, customer: str, key: str) -> None:
    """A transaction that gets its invoice numbered, then fails before committing."""
    with pytest.raises(Abort), session_scope(engine) as session:
        invoices.open_for_charge(
            session, purpose="topup", charge_key=key, subscription_id="", customer_id=customer,
            period_key="never", amount=500, currency="usd", description="credits", lines=[])
        raise Abort


def test_a_rolled_back_transaction_leaves_no_gap(db_url, service, new_customer, organization):
    """The number is taken in the charge's transaction: when it rolls back, so does the
    counter, and the next invoice takes the same number."""
    engine = get_engine(db_url)
    customer = new_customer()
    service.charge(topup(customer, "t1"))

    with pytest.raises(Abort), session_scope(engine) as session:
        made = invoices.open_for_charge(
            session, purpose="topup", charge_key="t2", subscription_id="",
            customer_id=customer, period_key="never", amount=500, currency="usd",
            description="credits", lines=[])
        assert made.number == 2
        raise Abort
    service.charge(topup(customer, "t3"))
    assert numbers(engine, organization) == [1, 2]
    assert invoices.by_key(engine, "t3:invoice").number == 2
