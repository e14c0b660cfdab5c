"""Plan change at period end, and D11: a different term makes a non_renewing subscription
active again; a same-term change does not restore renewal (reactivate first).

The tests that change to the pricier same-term TEAM run on rule version 3 (``V3``), where an
upgrade too waits for the period end; from version 4 on it takes effect at once, prorated
(tests/domain/test_proration.py)."""

from __future__ import annotations

import pytest

from domain.errors import RequestRefused
from domain.model import SubscriptionState, Status
from domain.requests import Cancel, ChangePlan, Pause, Reactivate
from tests.domain.helpers import (
    CUSTOMER,
    DECLINE,
    PRO,
    YEARLY,
    Driver,
    GrantCredits,
    at,
)
from domain.plans import Plan

T0 = at(2024, 1, 31, 12)
RENEWAL = at(2024, 2, 29, 12)
V3 = 3  # rule version 3: every change waits for the period end
TEAM = Plan(id="team", name="Team", amount=9000, currency="usd", interval="month",
            included_credits=4000)


def test_change_at_period_end_charges_the_new_price_at_renewal_and_grants_its_credits():
    d = Driver.create(T0, rules=V3)
    n = len(d.charges)
    d.request(ChangePlan(plan=TEAM, requested_by=CUSTOMER), at(2024, 2, 10))
    s = d.state
    assert s.plan == PRO and s.pending_plan == TEAM and s.status == Status.ACTIVE
    assert len(d.charges) == n  # nothing charged now
    event = d.events[-1]
    assert event.type == "customer.subscription.updated" and event.request == CUSTOMER
    assert event.previous_attributes == {"pending_plan": None}
    assert event.data["pending_plan"] == "team"
    d.advance(RENEWAL)
    charge = d.charges[-1]
    assert (charge.amount, charge.period_key) == (9000, "20240229T120000Z")
    assert d.of(GrantCredits)[-1].amount == 4000
    s = d.state
    assert s.plan == TEAM and s.pending_plan is None
    assert s.billing_cycle_anchor == T0  # same term: the anchor is kept
    assert s.current_period_end == at(2024, 3, 31, 12)
    switched = d.events_of("customer.subscription.updated")[-1]
    assert switched.request is None
    assert switched.previous_attributes["plan"] == "pro"


def test_a_different_term_starts_a_new_cycle_at_the_boundary():
    d = Driver.create(T0)
    d.request(ChangePlan(plan=YEARLY), at(2024, 2, 10))
    d.advance(RENEWAL)
    s = d.state
    assert s.plan == YEARLY and s.billing_cycle_anchor == RENEWAL
    assert (s.current_period_start, s.current_period_end) == (RENEWAL, at(2025, 2, 28, 12))
    assert d.charges[-1].amount == 30000
    d.advance(at(2024, 12, 1))
    assert len(d.charges) == 2  # no monthly renewals any more


def test_non_renewing_switched_to_a_different_term_is_active_again_d11():
    d = Driver.create(T0)
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 5))
    assert d.state.status == Status.NON_RENEWING
    d.request(ChangePlan(plan=YEARLY), at(2024, 2, 10))
    s = d.state
    assert s.status == Status.ACTIVE and s.cancel_at is None and s.cancellation is None
    assert s.pending_plan == YEARLY
    prev = d.events[-1].previous_attributes
    assert prev["status"] == "non_renewing" and prev["cancel_at_period_end"] is True
    d.advance(RENEWAL)
    assert d.state.status == Status.ACTIVE and d.state.plan == YEARLY
    assert d.charges[-1].amount == 30000


def test_non_renewing_same_term_change_is_refused_until_reactivated():
    d = Driver.create(T0, rules=V3)
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 5))
    before = d.state
    with pytest.raises(RequestRefused) as err:
        d.request(ChangePlan(plan=TEAM), at(2024, 2, 10))
    assert err.value.code == "cancellation_scheduled" and err.value.field == "plan"
    assert "reactivate first" in err.value.message
    assert d.state == before
    d.request(Reactivate(), at(2024, 2, 10))
    d.request(ChangePlan(plan=TEAM), at(2024, 2, 10))
    assert d.state.pending_plan == TEAM


def test_choosing_the_current_plan_again_removes_the_pending_change():
    d = Driver.create(T0, rules=V3)
    d.request(ChangePlan(plan=TEAM), at(2024, 2, 10))
    n = len(d.events)
    d.request(ChangePlan(plan=TEAM), at(2024, 2, 11))  # a retry: nothing new
    assert len(d.events) == n
    d.request(ChangePlan(plan=PRO), at(2024, 2, 12))
    assert d.state.pending_plan is None
    assert d.events[-1].previous_attributes == {"pending_plan": "team"}
    with pytest.raises(RequestRefused) as err:
        d.request(ChangePlan(plan=PRO), at(2024, 2, 13))
    assert err.value.code == "same_plan"
    d.advance(RENEWAL)
    assert d.charges[-1].amount == 3000


def test_scheduled_start_switches_plan_at_once():
    d = Driver.create(T0, start_date=at(2024, 3, 1))
    d.request(ChangePlan(plan=YEARLY), at(2024, 2, 1))
    s = d.state
    assert s.status == Status.SCHEDULED and s.plan == YEARLY and s.pending_plan is None
    assert s.current_period_end == at(2025, 3, 1)
    d.advance(at(2024, 3, 1))
    assert d.charges[-1].amount == 30000 and d.state.status == Status.ACTIVE


def test_trial_converts_on_the_pending_plan():
    d = Driver.create(T0, trial_end=at(2024, 2, 14))
    d.request(ChangePlan(plan=YEARLY), at(2024, 2, 1))
    d.advance(at(2024, 2, 14))
    s = d.state
    assert s.plan == YEARLY and s.current_period_end == at(2025, 2, 14)
    assert d.charges[-1].amount == 30000


@pytest.mark.parametrize("setup, code", [
    ("ended", "subscription_ended"),
    ("paused", "paused"),
    ("pause_scheduled", "pause_scheduled"),
    ("past_due", "unpaid_period"),
])
def test_refused(setup, code):
    d = Driver.create(T0)
    now = at(2024, 2, 10)
    if setup == "ended":
        d.request(Cancel(mode="immediately"), now)
    elif setup == "paused":
        d.request(Pause(mode="now"), now)
    elif setup == "pause_scheduled":
        d.request(Pause(mode="at_period_end"), now)
    else:
        d.script(DECLINE)
        now = at(2024, 3, 1)
        d.advance(now)
    with pytest.raises(RequestRefused) as err:
        d.request(ChangePlan(plan=TEAM), now)
    assert err.value.code == code


def test_pause_is_refused_while_a_plan_change_is_pending():
    d = Driver.create(T0, rules=V3)
    d.request(ChangePlan(plan=TEAM), at(2024, 2, 10))
    with pytest.raises(RequestRefused) as err:
        d.request(Pause(), at(2024, 2, 11))
    assert err.value.code == "plan_change_scheduled"


def test_states_without_pending_plan_still_load():
    d = Driver.create(T0)
    raw = d.state.model_dump(mode="json")
    raw.pop("pending_plan")
    assert SubscriptionState.model_validate(raw).pending_plan is None
    assert "pending_plan" not in d.state.snapshot()


def test_a_pending_change_is_dropped_when_the_subscription_ends():
    d = Driver.create(T0, rules=V3)
    d.request(ChangePlan(plan=TEAM), at(2024, 2, 10))
    d.request(Cancel(mode="at_period_end"), at(2024, 2, 11))
    assert d.state.pending_plan == TEAM  # reactivating would keep it
    n = len(d.charges)
    d.advance(RENEWAL)
    assert d.state.status == Status.CANCELED and d.state.pending_plan is None
    assert len(d.charges) == n
    deleted = d.events_of("customer.subscription.deleted")[-1]
    assert deleted.previous_attributes["pending_plan"] == "team"


def test_late_recovery_switches_to_the_pending_plan_and_charges_it_once():
    from tests.domain.helpers import WEEKLY
    from domain.model import BillingPolicy
    from domain.requests import PaymentMethodUpdated

    weekly_team = Plan(id="team-weekly", name="Team weekly", amount=2100, currency="eur",
                       interval="week")
    d = Driver.create(T0, plan=WEEKLY, policy=BillingPolicy(final_action="unpaid"))
    d.request(ChangePlan(plan=weekly_team), at(2024, 2, 1))
    d.script(DECLINE, DECLINE, DECLINE, DECLINE)
    d.advance(at(2024, 3, 1, 12))
    assert d.state.status == Status.UNPAID and d.state.pending_plan is None  # switched Feb 7
    n = len(d.charges)
    d.request(PaymentMethodUpdated(), at(2024, 3, 1, 12))
    assert [(c.period_key, c.amount) for c in d.charges[n:]] == [
        ("20240207T120000Z", 2100), ("20240228T120000Z", 2100)]
