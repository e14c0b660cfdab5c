"""Payment scenarios on the real worker and localstripe (D9 dunning, D6 immediate cancel with
refunds, D7 end-of-term final charge): the charge records, the PaymentIntents and refunds at
localstripe, the state and the D8 events must all agree."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import RequestRefused
from domain.model import SYSTEM, BillingPolicy, Status
from domain.requests import Cancel, PaymentMethodUpdated
from tests.fakes_stripe import CARD_DECLINED, CARD_OK
from tests.workflows.scenario import MONTHLY, Scenario

pytestmark = pytest.mark.temporal

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def _attempts(scenario: Scenario) -> list[tuple[str, str]]:
    """(purpose:attempt, status) of every charge attempt, in order."""
    return [(f"{c.purpose}:{c.idempotency_key.rsplit(':', 1)[1]}", c.status)
            for c in scenario.charges()]


async def _first_renewal_declined(scenario: Scenario):
    """An active subscription whose card is swapped for one that declines, at its first
    renewal: past_due after one failed attempt."""
    first = await scenario.start()
    scenario.payments.add_test_card(first.customer_id, CARD_DECLINED)
    await scenario.sleep_until(first.current_period_end + SECOND)
    past_due = await scenario.until(lambda s: s.status == Status.PAST_DUE
                                    and s.awaiting_charge is None)
    return first, past_due


async def test_successful_first_charge_and_renewal(scenario):
    """The first period and a renewal are each charged once at localstripe; invoice.paid is
    automatic (D8)."""
    first = await scenario.start()
    assert first.current_period_paid == MONTHLY.amount
    await scenario.sleep_until(first.current_period_end + SECOND)
    renewed = await scenario.until(lambda s: s.period_index == 1 and s.awaiting_charge is None)
    assert renewed.status == Status.ACTIVE and renewed.current_period_paid == MONTHLY.amount
    assert _attempts(scenario) == [("first_period:1", "succeeded"), ("renewal:1", "succeeded")]
    intents = scenario.stripe_intents()
    assert sorted((pi["metadata"]["period_key"], pi["status"], pi["amount"])
                  for pi in intents) == [(first.period_key, "succeeded", 2000),
                                         (renewed.period_key, "succeeded", 2000)]
    assert renewed.current_period_payment_intent in {pi["id"] for pi in intents}
    paid = [e for e in scenario.events() if e.type == "invoice.paid"]
    assert len(paid) == 2 and all(e.request is None for e in paid)


async def test_declined_renewal_is_past_due_with_access_during_grace(scenario):
    """D9: a declined renewal makes the subscription past_due, with a retry scheduled and
    access kept during the grace period; the failure is an automatic event (D8)."""
    first, past_due = await _first_renewal_declined(scenario)
    end = first.current_period_end
    assert past_due.current_period_start == end and past_due.current_period_paid == 0
    dunning = past_due.dunning
    assert dunning.attempts == 1 and dunning.last_decline_code
    assert dunning.grace_until == end + past_due.policy.grace_period == end + 5 * DAY
    assert end + 3 * DAY <= dunning.next_retry_at < end + 3 * DAY + 10 * SECOND
    assert past_due.has_access(await scenario.now())
    assert not past_due.has_access(dunning.grace_until)
    assert past_due.renewal_line == f"Renewing on {past_due.current_period_end.isoformat()}"
    assert _attempts(scenario) == [("first_period:1", "succeeded"), ("renewal:1", "declined")]
    failed = [e for e in scenario.events() if e.type == "invoice.payment_failed"]
    assert len(failed) == 1 and failed[0].request is None
    assert failed[0].previous_attributes["attempt"] == 1


@pytest.mark.parametrize("via", ["update", "signal"])
async def test_new_payment_method_retries_at_once_and_keeps_the_anchor(scenario, via):
    """D9: a new default payment method triggers an immediate retry; once paid the
    subscription is active on the same anchor and the scheduled retry never runs."""
    first, past_due = await _first_renewal_declined(scenario)
    record = scenario.payments.add_test_card(first.customer_id, CARD_OK)
    request = PaymentMethodUpdated(payment_method_id=record.default_payment_method)
    if via == "update":
        active = await scenario.send(request)
    else:
        await scenario.signal(request)
        active = await scenario.until(lambda s: s.status == Status.ACTIVE)
    assert active.status == Status.ACTIVE and active.dunning is None
    assert active.current_period_start == first.current_period_end
    assert active.current_period_end == first.anchor_boundary(2)
    assert active.current_period_paid == MONTHLY.amount
    assert _attempts(scenario) == [("first_period:1", "succeeded"), ("renewal:1", "declined"),
                                   ("renewal:2", "succeeded")]

    await scenario.sleep_until(past_due.dunning.next_retry_at + DAY)
    assert await scenario.state() == active
    assert len(scenario.charges()) == 3
    paid = [pi for pi in scenario.stripe_intents() if pi["status"] == "succeeded"]
    assert len(paid) == 2


async def test_four_failures_cancel_automatically_and_nothing_more_is_charged(scenario):
    """D9: retries after 3, 5 and 7 days; access only during the grace period; after the
    fourth failure the subscription is cancelled automatically (D8: no requester) and open
    charges are closed, so nothing is ever charged again."""
    first, past_due = await _first_renewal_declined(scenario)
    end = first.current_period_end

    await scenario.sleep_until(end + 3 * DAY + SECOND)
    second = await scenario.until(lambda s: s.dunning and s.dunning.attempts == 2
                                  and s.awaiting_charge is None)
    assert second.status == Status.PAST_DUE and second.has_access(await scenario.now())

    await scenario.sleep_until(end + 8 * DAY + SECOND)
    third = await scenario.until(lambda s: s.dunning and s.dunning.attempts == 3
                                 and s.awaiting_charge is None)
    assert third.status == Status.PAST_DUE and not third.has_access(await scenario.now())

    await scenario.sleep_until(end + 15 * DAY + SECOND)
    final = await scenario.finished()
    assert final.status == Status.CANCELED
    assert final.cancellation.reason == "payment_failed"
    assert final.cancellation.requested_by == SYSTEM
    assert end + 15 * DAY <= final.ended_at < end + 15 * DAY + 10 * SECOND
    assert _attempts(scenario) == [("first_period:1", "succeeded")] + [
        (f"renewal:{n}", "declined") for n in (1, 2, 3, 4)]
    renewals = scenario.charges()[1:]
    assert all(c.closed_at is not None for c in renewals)  # D6: nothing can still be paid
    events = scenario.events()
    assert [e.type for e in events].count("invoice.payment_failed") == 4
    assert events[-1].type == "customer.subscription.deleted" and events[-1].request is None

    await scenario.sleep_until(end + 70 * DAY)
    assert len(scenario.charges()) == 5
    intents = scenario.stripe_intents()
    assert [pi["status"] for pi in intents].count("succeeded") == 1
    assert all(pi["status"] != "requires_confirmation" for pi in intents)


async def test_cancel_during_dunning_stops_the_retries(scenario):
    """D9/D10-like rule for unpaid periods: a past_due subscription can only be cancelled
    immediately; after that no retry is attempted (D6: the open charge is closed)."""
    first, past_due = await _first_renewal_declined(scenario)
    with pytest.raises(RequestRefused) as refused:
        await scenario.send(Cancel(mode="at_period_end"))
    assert refused.value.code == "unpaid_period"

    ended = await scenario.send(Cancel(mode="immediately"))
    assert ended.status == Status.CANCELED and ended.dunning is None
    attempts = _attempts(scenario)
    assert attempts == [("first_period:1", "succeeded"), ("renewal:1", "declined")]
    assert scenario.charges()[1].closed_at is not None

    await scenario.sleep_until(first.current_period_end + 30 * DAY)
    assert _attempts(scenario) == attempts
    assert await scenario.finished() == ended
    assert ended.cancellation.requested_by.kind == "customer"
    assert scenario.events()[-1].request is not None  # requested (D8)


@pytest.mark.parametrize("refund", ["none", "prorated", "full"])
async def test_immediate_cancel_refunds_as_asked(scenario, refund):
    """D6: no automatic refund; a prorated refund covers the unused part of the period, a
    full one the whole period; the amount reaches localstripe once."""
    first = await scenario.start()
    await scenario.sleep_until(first.current_period_start + 10 * DAY)
    ended = await scenario.send(Cancel(mode="immediately", refund=refund))
    final = await scenario.finished()
    assert final == ended and final.status == Status.CANCELED

    micro = timedelta(microseconds=1)
    remaining = (final.current_period_end - final.ended_at) // micro
    total = (final.current_period_end - final.current_period_start) // micro
    expected = {"none": 0, "full": 2000, "prorated": 2000 * remaining // total}[refund]
    if refund == "prorated":
        assert 1000 < expected < 1500  # about 20 of 30 days

    rows = scenario.refunds()
    assert [(r.amount, r.status) for r in rows] == ([(expected, "succeeded")] if expected
                                                    else [])
    intent = first.current_period_payment_intent
    at_stripe = scenario.stripe_refunds(intent)
    assert sum(r["amount"] for r in at_stripe) == expected
    assert len(at_stripe) == (1 if expected else 0)
    if expected:
        assert at_stripe[0]["id"] == rows[0].stripe_refund_id
    assert len(scenario.charges()) == 1


async def test_end_of_term_cancel_collects_pending_charges_in_a_final_charge(scenario):
    """D7: one-off items and metered usage pending at the end of the term are billed in one
    final charge when the scheduled cancellation takes effect; no renewal is charged."""
    first = await scenario.start()
    sub, customer = scenario.sub_id, first.customer_id
    scenario.payments.add_pending_charge(f"{sub}:setup", sub, customer, 300, "usd",
                                         "onboarding", kind="one_off")
    scenario.payments.add_pending_charge(f"{sub}:usage", sub, customer, 150, "usd",
                                         "usage", kind="metered")
    await scenario.send(Cancel(mode="at_period_end"))
    await scenario.sleep_until(first.current_period_end + SECOND)
    final = await scenario.finished()
    assert final.status == Status.CANCELED and final.ended_at == first.current_period_end

    assert [(c.purpose, c.amount, c.status) for c in scenario.charges()] == [
        ("first_period", 2000, "succeeded"), ("final_invoice", 450, "succeeded")]
    assert scenario.payments.pending_charges(sub) == []
    assert len(scenario.payments.pending_charges(sub, "collected")) == 2
    final_intents = [pi for pi in scenario.stripe_intents()
                     if pi["metadata"]["purpose"] == "final_invoice"]
    assert [(pi["amount"], pi["status"]) for pi in final_intents] == [(450, "succeeded")]


async def test_immediate_cancel_discards_usage_and_keeps_one_off_items_pending(scenario):
    """D6: metered usage of the period is discarded, pending one-off items stay pending (billed
    only if collected explicitly), and no final charge is made."""
    first = await scenario.start()
    sub, customer = scenario.sub_id, first.customer_id
    scenario.payments.add_pending_charge(f"{sub}:setup", sub, customer, 300, "usd",
                                         kind="one_off")
    scenario.payments.add_pending_charge(f"{sub}:usage", sub, customer, 150, "usd",
                                         kind="metered")
    await scenario.send(Cancel(mode="immediately"))
    await scenario.finished()
    assert [c.purpose for c in scenario.charges()] == ["first_period"]
    assert [p.kind for p in scenario.payments.pending_charges(sub)] == ["one_off"]
    assert [p.kind for p in scenario.payments.pending_charges(sub, "discarded")] == ["metered"]


async def test_end_of_term_cancel_ends_even_when_the_final_charge_is_declined(scenario):
    """D7: the subscription is cancelled whether or not the final collection succeeds; a
    declined final charge is not retried."""
    first = await scenario.start()
    sub, customer = scenario.sub_id, first.customer_id
    scenario.payments.add_pending_charge(f"{sub}:usage", sub, customer, 150, "usd",
                                         kind="metered")
    await scenario.send(Cancel(mode="at_period_end"))
    scenario.payments.add_test_card(customer, CARD_DECLINED)
    await scenario.sleep_until(first.current_period_end + SECOND)
    final = await scenario.finished()
    assert final.status == Status.CANCELED and final.ended_at == first.current_period_end
    assert [(c.purpose, c.amount, c.status) for c in scenario.charges()] == [
        ("first_period", 2000, "succeeded"), ("final_invoice", 150, "declined")]
    await scenario.sleep_until(first.current_period_end + 30 * DAY)
    assert len(scenario.charges()) == 2


async def test_declined_first_payment_is_incomplete_without_access_until_a_new_card(scenario):
    """D9 for the first period: a declined first payment leaves the subscription incomplete,
    without access; a new payment method retries at once and the paid period keeps its
    original anchor."""
    incomplete = await scenario.start(card=CARD_DECLINED, wait_status="incomplete")
    assert incomplete.dunning.attempts == 1
    assert not incomplete.has_access(await scenario.now())
    record = scenario.payments.add_test_card(incomplete.customer_id, CARD_OK)
    active = await scenario.send(PaymentMethodUpdated(
        payment_method_id=record.default_payment_method))
    assert active.status == Status.ACTIVE
    assert active.current_period_start == incomplete.current_period_start
    assert active.billing_cycle_anchor == incomplete.billing_cycle_anchor
    assert _attempts(scenario) == [("first_period:1", "declined"),
                                   ("first_period:2", "succeeded")]


async def test_unpaid_policy_keeps_the_subscription_without_access_until_a_new_card(scenario):
    """D9 with final_action=unpaid: after the fourth failure the subscription is unpaid (no
    access, no more retries) instead of cancelled; a new card retries at once and it is active
    again on the same anchor."""
    first = await scenario.start(policy=BillingPolicy(final_action="unpaid"))
    scenario.payments.add_test_card(first.customer_id, CARD_DECLINED)
    end = first.current_period_end
    await scenario.sleep_until(end + 15 * DAY + SECOND)
    unpaid = await scenario.until(lambda s: s.status == Status.UNPAID)
    assert unpaid.dunning.attempts == 4 and unpaid.dunning.next_retry_at is None
    assert not unpaid.has_access(await scenario.now())
    await scenario.sleep_until(end + 20 * DAY)
    assert len(scenario.charges()) == 5  # no retry while unpaid

    scenario.payments.add_test_card(first.customer_id, CARD_OK)
    active = await scenario.send(PaymentMethodUpdated())
    assert active.status == Status.ACTIVE and active.current_period_start == end
    assert active.current_period_end == first.anchor_boundary(2)
    assert _attempts(scenario)[-2:] == [("renewal:4", "declined"), ("renewal:5", "succeeded")]
