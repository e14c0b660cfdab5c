"""The reconciliation job as deployed: the ``reconcile-payments`` Schedule, created the way the
worker creates it (idempotently, updated when the interval setting changes), is triggered on
the dev server and runs the job's workflow and activity on the real worker. It repairs a
planted paid purchase without its credits and reports a planted PaymentIntent the database
does not know. (Schedules need the dev server: the time-skipping one has none.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from activities.types import CreditPurchase
from config.settings import ReconcileSettings, Settings
from domain import purchases
from ledger.service import Ledger
from payments.reconcile import ReconcileReport
from store.engine import get_engine
from tests.fakes_stripe import CARD_OK
from tests.support.temporal import dev_server_env
from workers.main import build_worker
from workflows.reconcile import ReconcilePaymentsWorkflow
from workflows.schedules import RECONCILE_SCHEDULE_ID, ensure_reconcile_schedule

pytestmark = pytest.mark.temporal


async def test_the_scheduled_job_repairs_a_purchase_and_reports_an_unknown_intent(
        settings: Settings, payments):
    settings = settings.model_copy(update={"reconcile": ReconcileSettings(
        interval=timedelta(hours=1), settle_after=timedelta(0))})
    customer = f"cus_{uuid.uuid4().hex[:8]}"
    payments.create_customer(customer, email="ada@example.com", name="Ada")
    record = payments.add_test_card(customer, CARD_OK)
    # A top-up whose charge went through and whose process died before the ledger write.
    bought = CreditPurchase(
        idempotency_key=purchases.topup_key(customer, "lost"), customer_id=customer,
        purpose="topup", credits=120, amount=purchases.price(120),
        currency=purchases.CURRENCY, at=datetime.now(UTC))
    assert payments.charge(bought.charge_request()).status == "succeeded"
    # Money taken at Stripe by something that left no record here.
    planted = payments.gateway.create_payment_intent(
        f"planted-{uuid.uuid4().hex}", amount=990, currency="usd",
        customer=record.stripe_customer_id, payment_method=record.default_payment_method,
        metadata={"customer_id": customer})
    payments.gateway.confirm_payment_intent(planted.id, idempotency_key=uuid.uuid4().hex)

    env = await dev_server_env()
    try:
        assert await ensure_reconcile_schedule(env.client, settings)
        assert await ensure_reconcile_schedule(env.client, settings)  # found, left as it is
        faster = settings.model_copy(update={"reconcile": settings.reconcile.model_copy(
            update={"interval": timedelta(minutes=30)})})
        assert await ensure_reconcile_schedule(env.client, faster)  # brought in line
        schedule = env.client.get_schedule_handle(RECONCILE_SCHEDULE_ID)
        described = await schedule.describe()
        assert [i.every for i in described.schedule.spec.intervals] == [timedelta(minutes=30)]
        off = settings.model_copy(update={"reconcile": ReconcileSettings(interval=timedelta(0))})
        assert not await ensure_reconcile_schedule(env.client, off)

        async with build_worker(env.client, settings):
            await schedule.trigger()
            report = await asyncio.wait_for(_first_run(env.client, schedule), 60)
    finally:
        await env.shutdown()

    mine = {(f.kind, f.action, f.idempotency_key, f.payment_intent_id)
            for f in report.findings if f.customer_id == customer}
    paid_with = payments.get_charge(bought.idempotency_key).payment_intent_id
    assert mine == {("uncredited_purchase", "repaired", bought.idempotency_key, paid_with),
                    ("unknown_intent", "reported", None, planted.id)}, report.findings
    ledger = Ledger(get_engine(settings.database_url))
    assert ledger.balances(customer, datetime.now(UTC)).purchased == 120


async def _first_run(client, schedule) -> ReconcileReport:
    while not (await schedule.describe()).info.recent_actions:
        await asyncio.sleep(0.2)
    action = (await schedule.describe()).info.recent_actions[0].action
    return await client.get_workflow_handle_for(ReconcilePaymentsWorkflow.run,
                                                action.workflow_id).result()
