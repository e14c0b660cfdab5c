"""`subs reconcile` as an operator runs it (a subprocess with SUBS_* settings, SQLite,
localstripe): a dry run reports what it would repair and changes nothing, a real run repairs
it, and a check that cannot finish is one line and exit 1, never a traceback. Run as
``python -m cli.main`` from the checkout, which is what the `subs` script runs."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime

from activities.types import CreditPurchase
from domain import purchases
from ledger.service import Ledger
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from tests.cli.support import run
from tests.fakes_stripe import CARD_OK, free_port, stripe_settings


async def test_reconcile_reports_repairs_and_fails_in_one_line(sqlite_url, localstripe_url):
    engine = get_engine(sqlite_url)
    payments = PaymentService(engine, StripeGateway(stripe_settings(localstripe_url)))
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    payments.create_customer(customer, email="ops@example.com", name="Ops")
    payments.add_test_card(customer, CARD_OK)
    bought = CreditPurchase(
        idempotency_key=purchases.topup_key(customer, "lost"), customer_id=customer,
        purpose="topup", credits=75, amount=purchases.price(75), currency=purchases.CURRENCY,
        at=datetime.now(UTC))
    assert payments.charge(bought.charge_request()).status == "succeeded"  # never credited
    env = {"SUBS_DATABASE_URL": sqlite_url, "SUBS_STRIPE__API_BASE": localstripe_url,
           "SUBS_RECONCILE__SETTLE_AFTER": "PT0S"}
    subs = (sys.executable, "-m", "cli.main", "reconcile")

    code, out, err = await run(*subs, "--dry-run", env=env)
    assert code == 0, err
    [line] = [line for line in out.splitlines() if bought.idempotency_key in line]
    assert line.startswith("would_repair") and "uncredited_purchase" in line
    assert "(dry run)" in out.splitlines()[-1]
    balances = Ledger(engine).balances(customer, datetime.now(UTC))
    assert balances.purchased == 0
    assert '"action": "would_repair"' in err  # the JSON log line of the finding

    code, out, _ = await run(*subs, env=env)
    assert code == 0
    [line] = [line for line in out.splitlines() if bought.idempotency_key in line]
    assert line.startswith("repaired") and "granted 75 purchased credits" in line
    assert Ledger(engine).balances(customer, datetime.now(UTC)).purchased == 75

    unreachable = {**env, "SUBS_STRIPE__API_BASE": f"http://127.0.0.1:{free_port()}",
                   "SUBS_STRIPE__REQUEST_TIMEOUT_SECONDS": "2"}
    code, out, err = await run(*subs, "--dry-run", env=unreachable)
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("error")] == [
        next(line for line in out.splitlines() if "stripe_intents: RetryableGatewayError" in line)]
    assert "Traceback" not in out + err
