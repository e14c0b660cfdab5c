"""Which invoice a charge makes, how its status follows the charges and the lifecycle's
events, and what its PDF says (text extracted with pypdf)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from activities.events import in_event_transaction
from activities.types import ChargeRequest, InvoiceLine, PendingChargesRequest
from domain.model import Event
from domain.requests import Cancel
from eventlog import store as eventlog
from invoices import store as invoices
from invoices.receipts import invoice_pdf
from tests.domain.helpers import DECLINE, OK, Driver, at
from tests.fakes_stripe import CARD_DECLINED, CARD_OK

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
PERIOD = {"plan": "monthly", "period_start": START, "period_end": END}


def renewal(customer: str, attempt: int, sub: str = "sub_a") -> ChargeRequest:
    return ChargeRequest(
        idempotency_key=f"{sub}:2026-01-01:{attempt}", subscription_id=sub,
        customer_id=customer, amount=1500, currency="usd", description="Monthly",
        purpose="renewal", period_key="2026-01-01",
        lines=[InvoiceLine(kind="subscription", description="Monthly subscription",
                           amount=2000, **PERIOD),
               InvoiceLine(kind="discount", description="Discount", amount=-500, **PERIOD)])


def test_retries_of_a_period_pay_the_same_invoice(engine, service, new_customer):
    customer = new_customer(CARD_DECLINED)
    assert service.charge(renewal(customer, 1)).status == "declined"
    (invoice,) = invoices.list_invoices(engine, None, customer_id=customer)
    assert (invoice.status, invoice.total, invoice.amount_paid) == ("open", 1500, 0)
    service.add_test_card(customer, CARD_OK)
    paid = service.charge(renewal(customer, 2))
    (after,) = invoices.list_invoices(engine, None, customer_id=customer)
    assert after.id == invoice.id and after.number == invoice.number == 1
    assert (after.status, after.amount_paid, after.payment_intent_id) == (
        "paid", 1500, paid.payment_intent_id)
    assert [(line.kind, line.amount) for line in after.lines] == [("subscription", 2000),
                                                                   ("discount", -500)]


def test_a_declined_final_charge_is_uncollectible_and_a_declined_topup_void(
        engine, service, new_customer):
    customer = new_customer(CARD_DECLINED)
    service.add_pending_charge("sub_b:setup", "sub_b", customer, 700, "usd", "Setup")
    service.add_pending_charge("sub_b:usage", "sub_b", customer, 300, "usd", "API calls",
                               "metered")
    final = service.collect_pending_charges(PendingChargesRequest(
        idempotency_key="sub_b:2026-01-01:final", subscription_id="sub_b", customer_id=customer,
        currency="usd", period_key="2026-01-01"))
    assert final.charge.status == "declined"
    assert service.charge(ChargeRequest(
        idempotency_key="topup:1", subscription_id="", customer_id=customer, amount=900,
        currency="usd", description="100 credits", purpose="topup",
        period_key="never")).status == "declined"
    by_kind = {i.kind: i for i in invoices.list_invoices(engine, None, customer_id=customer)}
    assert by_kind["final_invoice"].status == "uncollectible"
    assert [(line.kind, line.description, line.amount)
            for line in by_kind["final_invoice"].lines] == [
        ("pending_item", "Setup", 700), ("pending_item", "API calls", 300)]
    assert (by_kind["topup"].status, by_kind["topup"].lines[0].kind) == ("void", "credits")
    assert sorted(i.number for i in by_kind.values()) == [1, 2]


def _ended(sub: str, customer: str, reason: str) -> list[Event]:
    """The real events of a subscription that ends immediately by request, or after its
    payments failed for good (the core's own decisions, tests.domain.helpers.Driver)."""
    if reason == "payment_failed":
        d = Driver.create(at(2026, 1, 1), sub_id=sub, customer_id=customer, outcomes=[OK],
                          default=DECLINE)
        d.advance(at(2026, 6, 1))
    else:
        d = Driver.create(at(2026, 1, 1), sub_id=sub, customer_id=customer)
        d.request(Cancel(mode="immediately"), at(2026, 1, 5))
    (ended,) = d.events_of("customer.subscription.deleted")
    assert ended.data["cancellation_details"]["reason"] == reason
    return d.events


@pytest.mark.parametrize("reason, status", [("cancellation_requested", "void"),
                                            ("payment_failed", "uncollectible")])
def test_the_end_of_the_subscription_closes_its_open_invoice(engine, service, new_customer,
                                                             reason, status):
    """D6: an immediate cancellation voids the open invoice; the end after dunning (the
    payment failed for good) leaves it uncollectible. A paid invoice stays paid."""
    customer = new_customer(CARD_DECLINED)
    service.charge(renewal(customer, 1, sub="sub_c"))
    service.add_test_card(customer, CARD_OK)
    service.charge(renewal(customer, 1, sub="sub_paid"))
    events = _ended("sub_c", customer, reason) + _ended("sub_paid", customer, reason)
    eventlog.append_many(engine, events, in_transaction=in_event_transaction)
    got = {i.subscription_id: i.status
           for i in invoices.list_invoices(engine, None, customer_id=customer)}
    assert got == {"sub_c": status, "sub_paid": "paid"}
    (closed,) = invoices.list_invoices(engine, None, subscription_id="sub_c")
    assert closed.closed_at is not None


def test_the_pdf_shows_number_amount_and_period(engine, service, new_customer):
    customer = new_customer()
    service.charge(renewal(customer, 1))
    (invoice,) = invoices.list_invoices(engine, None, customer_id=customer)
    name, content = invoice_pdf(engine, invoice.id)
    assert name == "INV-000001.pdf" and content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    for expected in ("Receipt INV-000001", "Total 15.00 USD", "Amount paid 15.00 USD",
                     "-5.00 USD", "20.00 USD", "2026-01-01 00:00:00 UTC",
                     "2026-02-01 00:00:00 UTC", invoice.payment_intent_id, customer,
                     "Acme"):
        assert expected in text, expected
