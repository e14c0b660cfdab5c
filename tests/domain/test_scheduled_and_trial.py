"""Future subscriptions (D10) and trials."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import lifecycle
from domain.errors import RequestInvalid, RequestRefused
from domain.lifecycle import next_wakeup
from domain.model import Status
from domain.requests import Cancel, PaymentMethodUpdated, Postpone, Reactivate
from tests.domain.helpers import SECOND, Driver, Refund, at, kinds

T0 = at(2024, 1, 31, 12)
START = at(2024, 3, 1)
TRIAL_END = at(2024, 2, 14, 12)


# D10: a future subscription can only be cancelled immediately ----------------------------------


def scheduled() -> Driver:
    d = Driver.create(T0, start_date=START)
    assert d.state.status == Status.SCHEDULED
    return d


def test_scheduled_subscription_can_be_cancelled_immediately_without_money_commands():
    d = scheduled()
    mark = d.mark
    d.request(Cancel(mode="immediately", refund="full"), at(2024, 2, 10))
    assert kinds(d.since(mark)) == ["customer.subscription.deleted"]
    s = d.state
    assert s.status == Status.CANCELED and s.ended_at == at(2024, 2, 10)
    assert d.events[-1].previous_attributes["status"] == "scheduled"
    d.advance(at(2024, 4, 1))
    assert d.charges == []  # it never starts


@pytest.mark.parametrize("request_", [
    Cancel(mode="at_period_end"),
    Cancel(mode="at_date", cancel_at=at(2024, 3, 10)),
    Cancel(mode="at_date", cancel_at=at(2024, 2, 20)),
    Cancel(mode="at_date"),  # not_started is checked before the missing cancel_at
], ids=["at_period_end", "at_date-after-start", "at_date-before-start", "at_date-missing"])
def test_scheduled_subscription_refuses_scheduled_cancellations(request_):
    d = scheduled()
    before = d.state
    with pytest.raises(RequestRefused) as err:
        d.request(request_, at(2024, 2, 10))
    assert err.value.code == "not_started"
    assert err.value.field == "mode"
    assert "D10" in err.value.message
    assert d.state == before
    with pytest.raises(RequestRefused) as again:
        lifecycle.validate(before, request_, at(2024, 2, 10))
    assert again.value.code == "not_started"


def test_scheduled_subscription_accepts_a_scheduled_cancel_once_started():
    d = scheduled()
    d.request(Cancel(mode="at_period_end"), START)  # the start happens first
    assert d.state.status == Status.NON_RENEWING
    assert d.state.cancel_at == at(2024, 4, 1)


def test_validate_scheduled_cancel_at_the_start_instant_is_accepted():
    d = scheduled()
    assert lifecycle.validate(d.state, Cancel(mode="at_period_end"), START) is None


@pytest.mark.parametrize(("request_", "code"), [
    (Reactivate(), "nothing_to_reactivate"),
    (Postpone(cancel_at=at(2024, 5, 1)), "nothing_to_postpone"),
])
def test_scheduled_subscription_has_nothing_to_undo(request_, code):
    with pytest.raises(RequestRefused) as err:
        scheduled().request(request_, at(2024, 2, 10))
    assert err.value.code == code


def test_payment_method_update_on_a_scheduled_subscription_changes_nothing():
    d = scheduled()
    before = d.state
    d.request(PaymentMethodUpdated(), at(2024, 2, 10))
    assert d.state == before


# Trials ------------------------------------------------------------------------------------------


def trialing() -> Driver:
    d = Driver.create(T0, trial_end=TRIAL_END)
    assert d.state.status == Status.TRIALING
    return d


def test_cancel_at_period_end_during_a_trial_ends_at_the_trial_end_uncharged():
    d = trialing()
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 1))
    s = d.state
    assert s.status == Status.TRIALING  # keeps its status and access
    assert s.cancel_at == TRIAL_END and s.cancel_at_period_end is True
    assert s.renewal_line == f"Cancelling on {TRIAL_END.isoformat()}"
    assert s.has_access(TRIAL_END - SECOND)
    assert next_wakeup(s) == TRIAL_END
    mark = d.mark
    d.advance(at(2024, 4, 1))
    assert kinds(d.since(mark)) == ["collect_pending_charges", "forfeit_credits",
                                    "lock_purchased_credits", "customer.subscription.deleted"]
    assert d.charges == []
    assert d.state.status == Status.CANCELED and d.state.ended_at == TRIAL_END
    assert d.events[-1].request is None


def test_reactivate_during_a_trial_returns_to_trialing():
    d = trialing()
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 1))
    d.request(Reactivate(), TRIAL_END - SECOND)
    s = d.state
    assert s.status == Status.TRIALING and s.cancel_at is None
    assert d.events[-1].previous_attributes.keys() == {
        "cancel_at", "cancel_at_period_end", "canceled_at", "cancellation_details"}
    d.advance(TRIAL_END)
    assert len(d.charges) == 1 and d.state.status == Status.ACTIVE


def test_reactivate_exactly_at_the_trial_end_is_refused():
    d = trialing()
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 1))
    with pytest.raises(RequestRefused) as err:
        d.request(Reactivate(), TRIAL_END)
    assert err.value.message == lifecycle.ENDED_MESSAGE


def test_cancel_at_a_date_inside_a_trial():
    d = trialing()
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 2, 10)), at(2024, 2, 1))
    assert d.state.status == Status.TRIALING and not d.state.cancel_at_period_end
    d.advance(at(2024, 2, 10))
    assert d.state.status == Status.CANCELED and d.charges == []


def test_cancel_at_a_date_beyond_the_trial_converts_then_ends():
    d = trialing()
    d.request(Cancel(mode="at_date", cancel_at=at(2024, 3, 1)), at(2024, 2, 1))
    assert d.state.status == Status.TRIALING
    d.advance(TRIAL_END)
    assert d.charges[0].purpose == "first_period"
    assert d.state.status == Status.NON_RENEWING
    d.advance(at(2024, 3, 1))
    assert d.state.status == Status.CANCELED and len(d.charges) == 1


@pytest.mark.parametrize("refund", ["none", "prorated", "full"])
def test_cancel_immediately_during_a_trial_refunds_nothing(refund):
    d = trialing()
    mark = d.mark
    d.request(Cancel(mode="immediately", refund=refund), at(2024, 2, 1))
    assert d.of(Refund) == []
    assert kinds(d.since(mark)) == ["discard_pending_charges", "forfeit_credits",
                                    "lock_purchased_credits", "customer.subscription.deleted"]


def test_trial_scheduled_cancel_rejects_a_past_date():
    d = trialing()
    with pytest.raises(RequestInvalid):
        d.request(Cancel(mode="at_date", cancel_at=at(2024, 1, 31)), at(2024, 2, 1))


def test_trial_end_before_the_first_wakeup_has_no_dunning():
    d = trialing()
    assert d.state.dunning is None and next_wakeup(d.state) == TRIAL_END
    d.advance(TRIAL_END - timedelta(microseconds=1))
    assert d.state.status == Status.TRIALING
