"""The payment confirmation email (on ``invoice.paid``) carries the invoice's PDF, sent by the
outbox dispatcher through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pypdf import PdfReader

from activities.events import in_event_transaction
from activities.types import ChargeRequest
from config.settings import NotificationSettings
from eventlog import store as eventlog
from invoices import store as invoices
from notifications.dispatcher import Dispatcher
from tests.domain.helpers import Driver, at
from tests.notifications.conftest import mailbox  # noqa: F401 - the fixture

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def test_the_receipt_email_attaches_the_invoice_pdf(engine, service, new_customer,
                                                          mailbox):  # noqa: F811
    customer = new_customer()
    d = Driver.create(at(2026, 3, 1), sub_id="sub_r", customer_id=customer)
    (charge,) = d.charges
    result = service.charge(ChargeRequest(
        idempotency_key=charge.idempotency_key, subscription_id="sub_r", customer_id=customer,
        amount=charge.amount, currency=charge.currency, description="Pro",
        purpose=charge.purpose, period_key=charge.period_key))
    assert result.status == "succeeded"
    eventlog.append_many(engine, d.events, in_transaction=in_event_transaction)

    sender = Dispatcher(engine, NotificationSettings(smtp_port=mailbox.port,
                                                     smtp_timeout_seconds=5))
    await sender.run_once(at(2026, 3, 1) + timedelta(seconds=1))
    (mail,) = mailbox.by_kind("payment_receipt")
    assert mail["To"] == f"{customer}@example.com"
    assert mail["Subject"] == "Your payment was received"
    body, attachment = [part for part in mail.walk() if not part.is_multipart()]
    assert "Invoice INV-000001: 30.00 USD paid" in body.get_payload(decode=True).decode()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "INV-000001.pdf"
    pdf = PdfReader(io.BytesIO(attachment.get_payload(decode=True)))
    text = pdf.pages[0].extract_text()
    (invoice,) = invoices.list_invoices(engine, None, customer_id=customer)
    assert "Receipt INV-000001" in text and "Total 30.00 USD" in text
    assert invoice.payment_intent_id in text
