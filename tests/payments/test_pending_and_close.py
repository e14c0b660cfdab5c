"""Pending charges (D7 collect, D6 discard) and closing open charges (D6), on both databases."""

from __future__ import annotations

import pytest

from activities.types import PendingChargesRequest
from payments.errors import IdempotencyConflict, PaymentRequestError
from payments.service import PaymentService
from tests.fakes_stripe import CARD_DECLINED
from tests.payments.conftest import Crash, CrashingGateway
from tests.payments.test_charge import request, stripe_id


def pending_request(customer: str, key: str = "sub_p:end", sub: str = "sub_p"):
    return PendingChargesRequest(idempotency_key=key, subscription_id=sub,
                                 customer_id=customer, currency="usd", period_key="2025-01-01")


def add_items(service: PaymentService, customer: str, sub: str = "sub_p") -> None:
    service.add_pending_charge(f"{sub}:setup", sub, customer, 500, "usd", "Setup", "one_off")
    service.add_pending_charge(f"{sub}:usage1", sub, customer, 120, "usd", "API calls", "metered")
    service.add_pending_charge(f"{sub}:usage2", sub, customer, 80, "usd", "API calls", "metered")


def test_add_pending_charge_is_idempotent(service, new_customer):
    customer = new_customer()
    first = service.add_pending_charge("k1", "sub_p", customer, 500, "usd", "Setup")
    assert service.add_pending_charge("k1", "sub_p", customer, 500, "usd", "Setup") == first
    assert len(service.pending_charges("sub_p")) == 1
    with pytest.raises(IdempotencyConflict):
        service.add_pending_charge("k1", "sub_p", customer, 501, "usd", "Setup")
    with pytest.raises(PaymentRequestError):
        service.add_pending_charge("k2", "sub_p", customer, 5, "usd", kind="monthly")


def test_collect_charges_everything_pending_once(service, gateway, new_customer):
    customer = new_customer()
    add_items(service, customer)
    result = service.collect_pending_charges(pending_request(customer))
    assert (result.amount, result.items) == (700, 3) and result.charge.status == "succeeded"
    assert {i.status for i in service.pending_charges("sub_p", "collected")} == {"collected"}
    assert service.pending_charges("sub_p") == []
    # A retry (same key) answers the same, even with an item added meanwhile.
    service.add_pending_charge("sub_p:late", "sub_p", customer, 40, "usd", "late", "metered")
    assert service.collect_pending_charges(pending_request(customer)) == result
    [charge] = gateway.charges_of(stripe_id(service, customer))
    assert charge.amount == 700
    assert [i.idempotency_key for i in service.pending_charges("sub_p")] == ["sub_p:late"]


def test_collect_marks_items_collected_even_when_the_charge_is_declined(service, new_customer):
    customer = new_customer(CARD_DECLINED)
    add_items(service, customer)
    result = service.collect_pending_charges(pending_request(customer))
    assert result.charge.status == "declined" and result.amount == 700
    assert service.pending_charges("sub_p") == []
    assert len(service.pending_charges("sub_p", "collected")) == 3


def test_collect_after_a_crash_charges_once(engine, stripe_cfg, service, new_customer):
    customer = new_customer()
    add_items(service, customer)
    crashing = CrashingGateway(stripe_cfg, crash_after={"confirm"})
    with pytest.raises(Crash):
        PaymentService(engine, crashing).collect_pending_charges(pending_request(customer))
    result = PaymentService(engine, crashing).collect_pending_charges(pending_request(customer))
    assert result.charge.status == "succeeded" and result.amount == 700
    assert len(crashing.charges_of(stripe_id(service, customer))) == 1


def test_collect_with_nothing_pending_charges_nothing(service, gateway, new_customer):
    result = service.collect_pending_charges(pending_request(new_customer()))
    assert (result.amount, result.items, result.charge) == (0, 0, None)
    assert gateway.created_intents == []


def test_discard_drops_metered_usage_and_keeps_one_off_items(service, gateway, new_customer):
    customer = new_customer()
    add_items(service, customer)
    result = service.discard_pending_charges(pending_request(customer, key="sub_p:cancel"))
    assert (result.amount, result.items, result.charge) == (200, 2, None)
    assert service.discard_pending_charges(pending_request(customer, key="sub_p:cancel")) \
        == result
    [kept] = service.pending_charges("sub_p")
    assert kept.kind == "one_off" and kept.amount == 500
    assert gateway.created_intents == []
    # D6: billed only if an invoice is generated for them explicitly.
    billed = service.collect_pending_charges(pending_request(customer, key="sub_p:invoice"))
    assert billed.amount == 500 and billed.charge.status == "succeeded"


def test_items_in_another_currency_are_left_alone(service, new_customer):
    customer = new_customer()
    service.add_pending_charge("eur", "sub_p", customer, 300, "eur", "Setup", "one_off")
    assert service.collect_pending_charges(pending_request(customer)).amount == 0
    assert [i.currency for i in service.pending_charges("sub_p")] == ["eur"]


def test_close_open_charges_cancels_what_could_still_be_paid(engine, stripe_cfg, service,
                                                             gateway, new_customer):
    customer = new_customer(CARD_DECLINED)
    declined = service.charge(request(customer, subscription_id="sub_c"))
    service.add_test_card(customer, "4242424242424242")
    crashing = CrashingGateway(stripe_cfg, crash_after={"before_confirm"})
    open_req = request(customer, subscription_id="sub_c")
    with pytest.raises(Crash):  # intent created and stored, never confirmed
        PaymentService(engine, crashing).charge(open_req)
    assert service.open_charges("sub_c").open_attempts == 1

    results = service.close_open_charges("sub_c")
    assert [(r.status, r.decline_code) for r in results] == [
        ("declined", "card_declined"), ("declined", "canceled")]
    assert gateway.retrieve_payment_intent(declined.payment_intent_id).status == "canceled"
    [pending_intent] = crashing.created_intents
    assert gateway.retrieve_payment_intent(pending_intent).status == "canceled"
    # No retry follows: the key now answers "declined", nothing was charged.
    assert service.charge(open_req).decline_code == "canceled"
    assert gateway.charges_of(stripe_id(service, customer)) == []
    assert service.close_open_charges("sub_c") == []  # idempotent
    assert service.open_charges("sub_c").open_attempts == 0


def test_close_records_a_payment_that_went_through(engine, stripe_cfg, service, new_customer):
    customer = new_customer()
    crashing = CrashingGateway(stripe_cfg, crash_after={"confirm"})
    req = request(customer, subscription_id="sub_c2")
    with pytest.raises(Crash):
        PaymentService(engine, crashing).charge(req)
    [result] = service.close_open_charges("sub_c2")
    assert result.status == "succeeded"  # money moved: closing must not lose it
    assert service.get_charge(req.idempotency_key).status == "succeeded"


def test_close_an_attempt_that_never_reached_stripe(engine, stripe_cfg, service, new_customer):
    customer = new_customer()
    crashing = CrashingGateway(stripe_cfg, crash_after={"create"})
    req = request(customer, subscription_id="sub_c3")
    with pytest.raises(Crash):  # the orphan intent's id was never stored
        PaymentService(engine, crashing).charge(req)
    [result] = service.close_open_charges("sub_c3")
    assert (result.status, result.decline_code) == ("declined", "canceled")
    assert service.charge(req).decline_code == "canceled"


def test_open_charges_summary(service, new_customer):
    customer = new_customer()
    add_items(service, customer, sub="sub_o")
    summary = service.open_charges("sub_o")
    assert (summary.count, summary.amount) == (3, 700)
