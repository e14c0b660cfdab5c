"""Charging exactly once per idempotency key, against localstripe (which ignores
Idempotency-Key), on SQLite and PostgreSQL. Charges are counted on the Stripe side."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from activities.types import ChargeRequest
from payments.errors import IdempotencyConflict, PaymentRequestError
from payments.service import PaymentService
from tests.fakes_stripe import CARD_DECLINED, CARD_OK
from tests.payments.conftest import Crash, CrashingGateway, RecordingGateway


def request(customer_id: str, key: str | None = None, amount: int = 1500, **kw) -> ChargeRequest:
    values = dict(idempotency_key=key or f"sub_1:2025-01-01:{uuid.uuid4().hex[:6]}",
                  subscription_id="sub_1", customer_id=customer_id, amount=amount,
                  currency="usd", description="Pro 2025-01", purpose="renewal",
                  period_key="2025-01-01")
    return ChargeRequest(**{**values, **kw})


def stripe_id(service: PaymentService, customer_id: str) -> str:
    return service.get_customer(customer_id).stripe_customer_id


def test_success(service, gateway, new_customer):
    customer = new_customer(CARD_OK)
    result = service.charge(request(customer))
    assert result.status == "succeeded" and result.payment_intent_id.startswith("pi_")
    assert gateway.retrieve_payment_intent(result.payment_intent_id).status == "succeeded"
    [charge] = gateway.charges_of(stripe_id(service, customer))
    assert charge.amount == 1500 and charge.payment_intent == result.payment_intent_id
    record = service.get_charge(result.idempotency_key)
    assert record.status == "succeeded" and record.amount == 1500


def test_decline_is_a_result_and_is_not_retried(service, gateway, new_customer):
    customer = new_customer(CARD_DECLINED)
    req = request(customer)
    result = service.charge(req)
    assert result.status == "declined" and result.decline_code == "card_declined"
    assert result.message
    confirms = gateway.confirms
    assert service.charge(req) == result  # stored outcome, Stripe not asked again
    assert gateway.confirms == confirms and len(gateway.created_intents) == 1
    assert gateway.charges_of(stripe_id(service, customer)) == []


def test_recovery_after_a_new_default_payment_method(service, gateway, new_customer):
    customer = new_customer(CARD_DECLINED)
    first = service.charge(request(customer, key="sub_1:p1:attempt1"))
    assert first.status == "declined"
    service.add_test_card(customer, CARD_OK)  # D9: a new payment method, then a retry
    second = service.charge(request(customer, key="sub_1:p1:attempt2"))
    assert second.status == "succeeded"
    assert service.charge(request(customer, key="sub_1:p1:attempt1")).status == "declined"
    [charge] = gateway.charges_of(stripe_id(service, customer))
    assert charge.payment_intent == second.payment_intent_id


def test_no_payment_method_is_a_decline(service, gateway, new_customer):
    customer = new_customer(card=None)
    result = service.charge(request(customer))
    assert (result.status, result.decline_code) == ("declined", "no_payment_method")
    unknown = service.charge(request("cust_unknown"))
    assert unknown.decline_code == "no_payment_method"
    assert gateway.created_intents == []


def test_same_key_twice_charges_once(service, gateway, new_customer):
    customer = new_customer()
    req = request(customer)
    assert service.charge(req) == service.charge(req)
    assert len(gateway.created_intents) == 1
    assert len(gateway.charges_of(stripe_id(service, customer))) == 1


def test_same_key_reused_for_another_request_is_refused(service, new_customer):
    customer = new_customer()
    req = request(customer)
    service.charge(req)
    with pytest.raises(IdempotencyConflict):
        service.charge(req.model_copy(update={"amount": 999}))
    with pytest.raises(PaymentRequestError):
        service.charge(request(customer, amount=-1))


def test_zero_amount_needs_no_stripe_call(service, gateway, new_customer):
    result = service.charge(request(new_customer(), amount=0))
    assert result.status == "succeeded" and result.payment_intent_id is None
    assert gateway.created_intents == []


class RacingGateway(RecordingGateway):
    """Holds every caller after creating its intent until all have created one: the worst
    interleaving, where every racer reaches the compare-and-set with its own intent."""

    def __init__(self, *args, parties: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.barrier = threading.Barrier(parties, timeout=10)

    def create_payment_intent(self, *args, **kwargs):
        intent = super().create_payment_intent(*args, **kwargs)
        self.barrier.wait()
        return intent


def test_same_key_concurrently_charges_once(engine, stripe_cfg, service, new_customer):
    customer = new_customer()
    racing = RacingGateway(stripe_cfg, parties=4)
    racer = PaymentService(engine, racing)
    req = request(customer)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: racer.charge(req), range(4)))
    assert all(r == results[0] for r in results) and results[0].status == "succeeded"
    assert len(racing.created_intents) == 4  # localstripe ignored the key: 4 intents...
    statuses = sorted(racing.retrieve_payment_intent(i).status for i in racing.created_intents)
    assert statuses == ["canceled", "canceled", "canceled", "succeeded"]  # ...one confirmed
    [charge] = racing.charges_of(stripe_id(service, customer))
    assert charge.payment_intent == results[0].payment_intent_id


def test_many_concurrent_calls_free_interleaving(service, gateway, new_customer):
    customer = new_customer()
    req = request(customer)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: service.charge(req), range(8)))
    assert {r.payment_intent_id for r in results} == {results[0].payment_intent_id}
    assert len(gateway.charges_of(stripe_id(service, customer))) == 1


@pytest.mark.parametrize("card,expected", [(CARD_OK, "succeeded"), (CARD_DECLINED, "declined")])
def test_crash_after_confirm_then_retry_records_the_outcome_once(
        engine, stripe_cfg, service, new_customer, card, expected):
    customer = new_customer(card)
    crashing = CrashingGateway(stripe_cfg, crash_after={"confirm"})
    crashy = PaymentService(engine, crashing)
    req = request(customer)
    with pytest.raises(Crash):
        crashy.charge(req)  # Stripe confirmed, we never recorded it
    assert service.get_charge(req.idempotency_key).status == "pending"
    result = crashy.charge(req)  # the retry reconciles with the stored intent
    assert result.status == expected
    assert crashing.confirms == 1 and len(crashing.created_intents) == 1
    charges = crashing.charges_of(stripe_id(service, customer))
    assert [c.payment_intent for c in charges] == (
        [result.payment_intent_id] if expected == "succeeded" else [])
    assert service.get_charge(req.idempotency_key).status == expected


def test_crash_before_confirm_then_retry_confirms_the_stored_intent(engine, stripe_cfg, service,
                                                                    new_customer):
    customer = new_customer()
    crashing = CrashingGateway(stripe_cfg, crash_after={"before_confirm"})
    crashy = PaymentService(engine, crashing)
    req = request(customer)
    with pytest.raises(Crash):
        crashy.charge(req)
    result = crashy.charge(req)
    assert result.status == "succeeded" and len(crashing.created_intents) == 1
    assert len(crashing.charges_of(stripe_id(service, customer))) == 1


def test_crash_between_create_and_storing_the_intent_leaves_an_unpaid_orphan(
        engine, stripe_cfg, service, new_customer):
    customer = new_customer()
    crashing = CrashingGateway(stripe_cfg, crash_after={"create"})
    crashy = PaymentService(engine, crashing)
    req = request(customer)
    with pytest.raises(Crash):
        crashy.charge(req)
    result = crashy.charge(req)
    orphan, paid = crashing.created_intents
    assert result.status == "succeeded" and result.payment_intent_id == paid
    assert crashing.retrieve_payment_intent(orphan).status == "requires_confirmation"
    [charge] = crashing.charges_of(stripe_id(service, customer))
    assert charge.payment_intent == paid


def test_last_renewal_charge_of_a_period(service, new_customer):
    customer = new_customer()
    assert service.last_renewal_charge("sub_1", "2025-01-01") is None
    paid = service.charge(request(customer, subscription_id="sub_lr"))
    service.charge(request(customer, subscription_id="sub_lr", purpose="topup"))
    record = service.last_renewal_charge("sub_lr", "2025-01-01")
    assert record.payment_intent_id == paid.payment_intent_id and record.amount == 1500
    assert service.last_renewal_charge("sub_lr", "2025-02-01") is None
