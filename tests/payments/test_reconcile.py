"""The reconciliation job's logic (payments.reconcile) on SQLite and PostgreSQL, against
localstripe: the states a crash leaves are made by really crashing the charge path
(CrashingGateway raises right after a Stripe call went through), and the job runs with its
clock an hour ahead so they count as settled, not in flight.

localstripe is shared by the session, so its intent list holds other tests' intents too:
findings are picked by this test's keys and intent ids.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from activities.types import CreditPurchase
from config.settings import ReconcileSettings
from domain import purchases
from ledger.service import Ledger
from payments.reconcile import Finding, Reconciler, ReconcileReport
from payments.service import PaymentService
from store.types import utcnow
from tests.payments.conftest import Crash, CrashingGateway

EXPIRES = datetime(2031, 1, 1, tzinfo=UTC)


@pytest.fixture
def ledger(engine) -> Ledger:
    return Ledger(engine)


@pytest.fixture
def reconciler(service, ledger):
    def make(**settings) -> Reconciler:
        return Reconciler(service, ledger, ReconcileSettings(**settings),
                          clock=lambda: utcnow() + timedelta(hours=1))
    return make


def purchase(customer_id: str, credits: int = 250, expires_at: datetime | None = None
             ) -> CreditPurchase:
    return CreditPurchase(
        idempotency_key=purchases.topup_key(customer_id, uuid.uuid4().hex[:8]),
        customer_id=customer_id, purpose="topup", credits=credits,
        amount=purchases.price(credits), currency=purchases.CURRENCY, at=utcnow(),
        expires_at=expires_at)


def crashed_charge(engine, stripe_cfg, bought: CreditPurchase, after: str) -> None:
    """The charge path dies right after the named Stripe call (see CrashingGateway)."""
    with pytest.raises(Crash):
        PaymentService(engine, CrashingGateway(stripe_cfg, crash_after={after})).charge(
            bought.charge_request())


def about(report: ReconcileReport, key: str) -> list[tuple[str, str]]:
    return [(f.kind, f.action) for f in report.findings if f.idempotency_key == key]


def test_a_paid_purchase_without_credits_is_granted_once(service, ledger, reconciler,
                                                         new_customer):
    customer = new_customer()
    bought = purchase(customer, expires_at=EXPIRES)
    assert service.charge(bought.charge_request()).status == "succeeded"  # then the crash

    dry = reconciler().run(dry_run=True)
    assert about(dry, bought.idempotency_key) == [("uncredited_purchase", "would_repair")]
    assert ledger.balances(customer, utcnow()).purchased == 0

    report = reconciler().run()
    assert about(report, bought.idempotency_key) == [("uncredited_purchase", "repaired")]
    assert report.checked["succeeded_purchases"] == 1 and not report.errors
    held = ledger.balances(customer, utcnow())
    assert held.purchased == 250
    # the lot the workflow would have granted: same key (so its grant replays), same expiry
    assert ledger.purchase_topup(customer, 250, bought.idempotency_key, bought.at,
                                 EXPIRES).applied == 250
    assert ledger.balances(customer, EXPIRES + timedelta(seconds=1)).purchased == 0
    assert about(reconciler().run(), bought.idempotency_key) == []  # repaired for good
    assert ledger.balances(customer, utcnow()).purchased == 250


def test_in_flight_work_is_left_alone(service, ledger, new_customer):
    customer = new_customer()
    bought = purchase(customer)
    service.charge(bought.charge_request())
    report = Reconciler(service, ledger, ReconcileSettings()).run()  # the real clock
    assert about(report, bought.idempotency_key) == []


def test_a_pending_charge_paid_at_stripe_is_recorded_then_credited(
        engine, stripe_cfg, service, gateway, ledger, reconciler, new_customer):
    customer = new_customer()
    bought = purchase(customer)
    crashed_charge(engine, stripe_cfg, bought, after="confirm")  # paid; nobody heard
    assert service.get_charge(bought.idempotency_key).status == "pending"

    report = reconciler().run()
    assert about(report, bought.idempotency_key) == [("stuck_charge", "repaired"),
                                                     ("uncredited_purchase", "repaired")]
    assert service.get_charge(bought.idempotency_key).status == "succeeded"
    assert ledger.balances(customer, utcnow()).purchased == 250
    stripe_customer = service.get_customer(customer).stripe_customer_id
    assert len(gateway.charges_of(stripe_customer)) == 1  # recorded, not charged again


def test_an_unconfirmed_charge_is_reported_never_confirmed(
        engine, stripe_cfg, service, gateway, ledger, reconciler, new_customer):
    customer = new_customer()
    bought = purchase(customer)
    crashed_charge(engine, stripe_cfg, bought, after="before_confirm")
    intent_id = service.get_charge(bought.idempotency_key).payment_intent_id

    [finding] = [f for f in reconciler().run().findings
                 if f.idempotency_key == bought.idempotency_key]
    assert (finding.kind, finding.action, finding.status) == (
        "stuck_charge", "reported", "requires_confirmation")
    assert gateway.retrieve_payment_intent(intent_id).status == "requires_confirmation"
    assert service.get_charge(bought.idempotency_key).status == "pending"
    assert ledger.balances(customer, utcnow()).purchased == 0


def test_intents_the_database_does_not_know_are_reported(
        engine, stripe_cfg, service, gateway, reconciler, new_customer):
    customer = new_customer()
    record = service.get_customer(customer)
    planted = gateway.create_payment_intent(
        f"planted-{uuid.uuid4().hex}", amount=4200, currency="usd",
        customer=record.stripe_customer_id, payment_method=record.default_payment_method,
        metadata={"customer_id": customer})
    planted = gateway.confirm_payment_intent(planted.id, idempotency_key=uuid.uuid4().hex)
    assert planted.status == "succeeded"  # money moved, and no record here knows it
    orphan = purchase(customer)
    crashed_charge(engine, stripe_cfg, orphan, after="create")  # an intent, its id lost
    known = purchase(customer)
    assert service.charge(known.charge_request()).status == "succeeded"

    report = reconciler().run()
    unknown = {f.payment_intent_id: f for f in report.findings if f.kind == "unknown_intent"
               and f.customer_id == customer}
    assert len(unknown) == 2 and planted.id in unknown, unknown
    assert unknown[planted.id].amount == 4200 and unknown[planted.id].status == "succeeded"
    assert "money moved" in unknown[planted.id].detail
    [lost] = [f for f in unknown.values() if f.payment_intent_id != planted.id]
    assert lost.idempotency_key == orphan.idempotency_key
    assert lost.status == "requires_confirmation" and "no money moved" in lost.detail
    assert service.get_charge(known.idempotency_key).payment_intent_id not in unknown
    assert report.checked["stripe_intents"] >= 3


def test_finding_lines_name_the_action_the_kind_and_the_facts():
    line = Finding(kind="unknown_intent", action="reported", payment_intent_id="pi_1",
                   amount=100, currency="usd", status="succeeded", detail="why").line()
    assert line.split()[:2] == ["reported", "unknown_intent"]
    assert "intent=pi_1 amount=100 currency=usd status=succeeded: why" in line
