"""Refunds: full or partial, exactly once per key (counted on localstripe), on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.types import RefundRequest
from payments import store
from payments.errors import IdempotencyConflict, PaymentInProgress, PaymentRequestError
from payments.models import Refund
from payments.service import PaymentService
from store.types import utcnow
from tests.payments.conftest import Crash, CrashingGateway
from tests.payments.test_charge import request


def refund_request(payment_intent_id: str, amount: int, key: str = "sub_1:p1:refund"):
    return RefundRequest(idempotency_key=key, subscription_id="sub_1",
                         payment_intent_id=payment_intent_id, amount=amount, reason="prorated")


def stripe_refunds(gateway, payment_intent_id: str) -> list:
    return gateway.client.v1.refunds.list(params={"payment_intent": payment_intent_id}).data


@pytest.fixture
def paid(service, new_customer) -> str:
    return service.charge(request(new_customer())).payment_intent_id


def test_partial_then_full_refund(service, gateway, paid):
    first = service.refund(refund_request(paid, 500, key="r1"))
    assert first.status == "succeeded" and first.amount == 500 and first.refund_id
    second = service.refund(refund_request(paid, 1000, key="r2"))
    assert second.status == "succeeded"
    assert sorted(r.amount for r in stripe_refunds(gateway, paid)) == [500, 1000]
    with pytest.raises(PaymentRequestError):  # nothing left to refund
        service.refund(refund_request(paid, 1, key="r3"))
    with pytest.raises(PaymentRequestError):  # a failed refund stays failed
        service.refund(refund_request(paid, 1, key="r3"))


def test_same_key_twice_refunds_once(service, gateway, paid):
    req = refund_request(paid, 700)
    assert service.refund(req) == service.refund(req)
    assert len(stripe_refunds(gateway, paid)) == 1 and len(gateway.refunds_created) == 1
    with pytest.raises(IdempotencyConflict):
        service.refund(req.model_copy(update={"amount": 800}))


def test_crash_after_stripe_refunded_then_retry_finds_it(engine, stripe_cfg, service, paid):
    crashing = CrashingGateway(stripe_cfg, crash_after={"refund"})
    crashy = PaymentService(engine, crashing, refund_lease=timedelta(0))
    req = refund_request(paid, 300)
    with pytest.raises(Crash):
        crashy.refund(req)
    result = crashy.refund(req)
    assert result.status == "succeeded" and result.refund_id == crashing.refunds_created[0]
    assert len(stripe_refunds(crashing, paid)) == 1


def test_a_refund_in_progress_elsewhere_is_retried_later(engine, gateway, paid):
    now = [utcnow()]
    service = PaymentService(engine, gateway, refund_lease=timedelta(minutes=2),
                             clock=lambda: now[0])
    req = refund_request(paid, 300)
    row = store.find_or_insert(engine, Refund, req.idempotency_key, lambda: Refund(
        idempotency_key=req.idempotency_key, subscription_id="sub_1",
        payment_intent_id=paid, amount=300, reason="prorated"), lambda r: True)
    assert store.take_refund_lease(engine, row.id, now[0], now[0] + timedelta(minutes=2))
    with pytest.raises(PaymentInProgress) as caught:  # another worker holds the lease
        service.refund(req)
    assert caught.value.retryable
    now[0] += timedelta(minutes=3)  # that worker died: its lease expires
    assert service.refund(req).status == "succeeded"
    assert len(stripe_refunds(gateway, paid)) == 1


def test_refusals(service, new_customer):
    assert service.refund(refund_request("pi_whatever", 0)).status == "skipped"
    with pytest.raises(PaymentRequestError):
        service.refund(refund_request("pi_unknown", 100))
    declined = service.charge(request(new_customer("4000000000000341")))
    with pytest.raises(PaymentRequestError):
        service.refund(refund_request(declined.payment_intent_id, 100, key="r-declined"))
