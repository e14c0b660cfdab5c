"""Held subscriptions: a call only an operator can fix (a rejected Stripe key, an unknown
error, one that kept failing past the alarm bound) holds the subscription instead of wedging
it. Time stands still while held, the customer keeps the access they had, cancel, reactivate
and postpone still apply, and an operator's Retry issues the same charge again."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import lifecycle
from domain.commands import CallFailed
from domain.errors import RequestRefused
from domain.model import Status
from domain.requests import (Cancel, ChangePlan, Pause, PaymentMethodUpdated, Postpone,
                             Reactivate, Retry)
from tests.domain.helpers import DECLINE, HOLD, YEARLY, Charge, Driver, at, kinds

T0 = at(2024, 1, 31, 12)
RENEWAL = at(2024, 2, 29, 12)
NEXT_END = at(2024, 3, 31, 12)


def held_renewal() -> Driver:
    """Active; the Feb 29 renewal's charge fails with a rejected key."""
    d = Driver.create(T0).script(HOLD)
    d.advance(RENEWAL)
    d.fail()
    return d


def test_a_failed_renewal_charge_holds_without_touching_the_customer():
    d = held_renewal()
    s = d.state
    assert s.hold is not None and s.hold.code == "stripe_authentication"
    assert s.hold.idempotency_key == f"sub_1:{s.period_key}:1"
    assert (s.hold.charge_attempt, s.hold.charge_purpose) == (1, "renewal")
    assert s.hold.stripe_request_id == "req_1" and s.hold.since == RENEWAL
    assert s.status == Status.ACTIVE and s.awaiting_charge is None and s.dunning is None
    assert s.has_access(RENEWAL + timedelta(days=40))  # our fault: access stays
    assert lifecycle.next_wakeup(s) is None  # time stands still: no retries, no renewals
    mark = d.mark
    d.advance(at(2024, 6, 1))
    assert d.since(mark) == [] and d.state == s


def test_retry_issues_the_same_charge_and_then_catches_up():
    d = held_renewal()
    key = d.state.hold.idempotency_key
    mark = d.mark
    d.request(Retry(), now=at(2024, 4, 2))  # after the held period's end
    charges = d.of(Charge, d.since(mark))
    assert [c.idempotency_key for c in charges][0] == key  # the same key: never twice
    assert charges[0].attempt == 1 and charges[0].amount == 3000
    s = d.state
    assert s.hold is None and s.status == Status.ACTIVE
    # the held period was paid late, then the next one (already due) renewed at once
    assert len(charges) == 2 and s.current_period_start == NEXT_END
    assert kinds(d.since(mark)).count("grant_credits") == 2


def test_retry_of_a_declined_charge_enters_dunning():
    d = held_renewal().script(DECLINE)
    d.request(Retry())
    assert d.state.status == Status.PAST_DUE and d.state.hold is None
    assert d.state.dunning.attempts == 1


def test_immediate_cancel_while_held_ends_it_and_drops_the_hold():
    d = held_renewal()
    mark = d.mark
    d.request(Cancel(mode="immediately"))
    assert d.state.status == Status.CANCELED and d.state.hold is None
    assert "discard_pending_charges" in kinds(d.since(mark))
    with pytest.raises(RequestRefused) as refused:
        d.request(Retry())
    assert refused.value.code == "subscription_ended"


def test_cancel_at_period_end_while_held_then_retry():
    d = held_renewal()
    d.request(Cancel(mode="at_period_end"))
    assert d.state.status == Status.NON_RENEWING and d.state.hold is not None
    d.request(Reactivate())
    d.request(Cancel(mode="at_period_end"))
    d.request(Postpone(cancel_at=at(2024, 3, 20)))
    d.request(Retry())
    assert d.state.status == Status.NON_RENEWING and d.state.current_period_paid == 3000
    d.advance(at(2024, 3, 21))
    assert d.state.status == Status.CANCELED


@pytest.mark.parametrize("request_", [Pause(mode="now"), ChangePlan(plan=YEARLY)])
def test_changes_that_move_periods_wait_for_the_retry(request_):
    d = held_renewal()
    with pytest.raises(RequestRefused) as refused:
        d.validate(request_)
    assert refused.value.code == "subscription_held"
    with pytest.raises(RequestRefused):
        d.request(request_)


def test_a_new_card_while_held_charges_nothing_until_the_retry():
    d = held_renewal()
    mark = d.mark
    d.request(PaymentMethodUpdated(payment_method_id="pm_new"))
    assert d.since(mark) == [] and d.state.hold is not None


def test_retry_when_not_held_is_refused():
    d = Driver.create(T0)
    with pytest.raises(RequestRefused) as refused:
        d.request(Retry())
    assert refused.value.code == "not_held"


def test_first_charge_held_keeps_incomplete_and_retries_as_first_period():
    d = Driver.create(T0, outcomes=[HOLD])
    d.fail("call_stalled")
    assert d.state.status == Status.INCOMPLETE and d.state.hold.charge_purpose == "first_period"
    d.request(Retry())
    assert d.state.status == Status.ACTIVE and d.state.hold is None


def test_a_hold_in_the_middle_of_other_work_is_released_by_the_shell():
    d = Driver.create(T0)
    failure = CallFailed(idempotency_key="sub_1:2024-01-31:refund", activity="refund",
                         code="stripe_rejected", message="x")
    held = lifecycle.hold(d.state, failure, RENEWAL)
    assert held.commands == () and held.state.hold.charge_attempt is None
    assert held.state.awaiting_charge == d.state.awaiting_charge
    with pytest.raises(RuntimeError):  # the workflow itself runs the call again
        lifecycle.handle(held.state, Retry(), T0)
    assert lifecycle.release(held.state).state == d.state
    assert d.state.hold is None
