"""`subs invoices <customer>` as an operator runs it (a subprocess with SUBS_* settings,
SQLite, localstripe): one line per invoice, newest first; a bad status or an unknown customer
is one line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import sys
import uuid

from activities.types import ChargeRequest
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.cli.support import run
from tests.fakes_stripe import CARD_OK, stripe_settings


async def test_invoices_lists_a_customers_invoices(sqlite_url, localstripe_url):
    payments = PaymentService(get_engine(sqlite_url),
                              StripeGateway(stripe_settings(localstripe_url)))
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    payments.create_customer(customer, email="ops@example.com", name="Ops")
    payments.add_test_card(customer, CARD_OK)
    for key, amount in (("a", 1250), ("b", 990)):
        assert payments.charge(ChargeRequest(
            idempotency_key=f"topup:{key}", subscription_id="", customer_id=customer,
            amount=amount, currency="usd", description="credits", purpose="topup",
            period_key="never")).status == "succeeded"
    env = {"SUBS_DATABASE_URL": sqlite_url}
    subs = (sys.executable, "-m", "cli.main", "invoices")

    code, out, err = await run(*subs, customer, env=env)
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[:3] for line in lines] == [["INV-000002", "paid", "topup"],
                                                    ["INV-000001", "paid", "topup"]]
    assert "9.90 USD" in lines[0] and "12.50 USD" in lines[1]

    code, out, err = await run(*subs, customer, "--json", "--status", "paid", env=env)
    assert code == 0 and [i["number"] for i in json.loads(out)] == [2, 1]

    code, out, err = await run(*subs, customer, "--status", "draft", env=env)
    assert code == 2 and "invalid status 'draft'" in err and "Traceback" not in out + err
    code, out, err = await run(*subs, "cus_nobody", env=env)
    assert code == 1 and err.strip() == "no customer cus_nobody"
