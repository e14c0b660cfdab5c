"""What the portal says, from the core's state: the status line keeps its date from "Renewing
on" to "Cancelling on", the page names what comes next, and no rule number reaches it."""

from __future__ import annotations

import re
from pathlib import Path

from api.portal import present
from domain.model import Status
from domain.requests import Cancel, Reactivate
from invoices.types import InvoiceRecord
from ledger.results import Balances
from payments.records import CardOnFile
from tests.domain.helpers import SECOND, Driver, at

T0 = at(2024, 1, 31, 12)
END = at(2024, 2, 29, 12)
MID = at(2024, 2, 14, 12)


def test_the_status_line_keeps_its_date_from_renewing_to_cancelling_and_back():
    d = Driver.create(T0)
    active = present.summarize(d.state, MID)
    assert active.line == "Renewing on 29 February 2024, 12:00 UTC"
    assert (active.next_label, active.next_step) == (
        "Next charge", "$30.00 on 29 February 2024, 12:00 UTC")
    d.request(Cancel(mode="at_period_end"), MID)
    cancelling = present.summarize(d.state, MID)
    assert cancelling.line == "Cancelling on 29 February 2024, 12:00 UTC"
    assert cancelling.next_label == "Ends" and cancelling.can_reactivate
    assert present.confirmation("cancel", d.state) == (
        "Your subscription is cancelled. You keep access until 29 February 2024, 12:00 UTC, "
        "and you will not be charged again.")
    d.request(Reactivate(), END - SECOND)
    assert present.confirmation("reactivate", d.state) == (
        "Your subscription continues. Renewing on 29 February 2024, 12:00 UTC.")


def test_an_ended_subscription_says_so_and_offers_nothing():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_period_end"), MID)
    d.advance(END)
    assert d.state.status == Status.CANCELED
    ended = present.summarize(d.state, END)
    assert ended.line is None and ended.ended and ended.next_label == "Ended"
    assert not (ended.can_reactivate or ended.can_pause or ended.can_resume)
    assert "start a new subscription" in ended.notices[0]


def test_money_and_credits_in_plain_words():
    assert present.money(2000, "usd") == "$20.00"
    assert present.money(123456, "sek") == "1,234.56 SEK"
    balances = Balances(customer_id="cus_1", at=T0, subscription=5000, free_daily=0,
                        purchased=500, locked_purchased=0, outstanding=0, spendable=5500)
    lock = {c.label: c for c in present.credit_lines(balances, "lock")}
    keep = {c.label: c for c in present.credit_lines(balances, "keep")}
    assert lock["Purchased credits"].amount == 500
    assert "locked until you reactivate" in lock["Purchased credits"].explanation
    assert "stay usable after your subscription ends" in keep["Purchased credits"].explanation
    assert "still pay for usage from before" in lock["Locked credits"].explanation


def test_no_rule_number_reaches_the_page():
    portal = Path(present.__file__).parent
    texts = [p.read_text() for p in (portal / "templates").glob("*.html")]
    texts += [str(v) for k, v in vars(present).items()
              if isinstance(v, str | dict) and not k.startswith("__")]
    assert not [t for t in texts if re.search(r"\bD\d{1,2}\b", t)]


def test_the_card_by_brand_and_last_four_or_else_its_id():
    assert present.card(CardOnFile(payment_method="pm_1", brand="visa", last4="4242")) == \
        present.Card("Visa ending 4242", is_id=False)
    assert present.card(CardOnFile(payment_method="pm_1", brand="amex", last4="0005")).text == \
        "American Express ending 0005"
    assert present.card(CardOnFile(payment_method="pm_1")) == present.Card("pm_1", is_id=True)
    assert present.card(None) is None


def test_an_invoice_row_in_plain_words():
    invoice = InvoiceRecord(
        id="in_1", number=7, display_number="INV-000007", organization_id="org_1",
        customer_id="cus_1", subscription_id="sub_1", kind="renewal", period_key="p",
        currency="usd", total=3000, amount_paid=0, status="uncollectible", lines=[],
        created_at=T0)
    row = present.invoice_row(invoice)
    assert (row.number, row.date, row.what, row.status, row.total, row.paid) == (
        "INV-000007", "31 January 2024", "Subscription renewal", "Payment failed", "$30.00",
        False)
    assert present.money(500, "jpy") == "500 JPY"
    assert set(present.INVOICE_STATUS_WORDS) == {"open", "paid", "void", "uncollectible"}
