"""Creating a subscription: immediate start, free plan, future start (D10), trial, D4 resubscribe.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from domain.errors import RequestInvalid
from domain.lifecycle import NewSubscription, create, next_wakeup
from domain.model import Actor, BillingPolicy, Status
from domain.plans import Plan
from domain.requests import Cancel
from tests.domain.helpers import (
    CUSTOMER,
    DECLINE,
    FREE,
    HOLD,
    PRO,
    SECOND,
    Charge,
    Driver,
    GrantCredits,
    at,
    kinds,
)

T0 = at(2024, 1, 31, 12)
FEB29 = at(2024, 2, 29, 12)


# Immediate start ---------------------------------------------------------------------------


def test_immediate_start_charges_the_first_period_and_waits_for_the_outcome():
    d = Driver.create(T0, outcomes=[HOLD])
    s = d.state
    assert kinds(d.log) == ["customer.subscription.created", "charge"]
    charge = d.charges[0]
    assert charge == Charge(idempotency_key="sub_1:20240131T120000Z:1",
                            period_key="20240131T120000Z", attempt=1, amount=3000,
                            currency="usd", purpose="first_period")
    assert s.status == Status.INCOMPLETE
    assert s.awaiting_charge == charge.idempotency_key
    assert (s.start_date, s.billing_cycle_anchor) == (T0, T0)
    assert (s.current_period_start, s.current_period_end) == (T0, FEB29)
    assert s.period_index == 0 and s.period_key == "20240131T120000Z"
    assert not s.has_access(T0)
    assert next_wakeup(s) is None  # nothing to do until the outcome arrives
    assert s.renewal_line is None


def test_created_event_carries_the_requester_and_a_deterministic_id():
    d = Driver.create(T0, outcomes=[HOLD])
    (event,) = d.events
    assert event.id == "evt_sub_1_000001"
    assert event.type == "customer.subscription.created"
    assert event.request == CUSTOMER
    assert event.created == T0
    assert event.data["id"] == "sub_1" and event.data["customer"] == "cus_1"
    assert event.data["organization"] == "cus_1"  # defaults to the customer
    assert event.data["plan"] == "pro"
    assert event.previous_attributes == {}


def test_first_payment_success_activates_and_grants_the_period_credits():
    d = Driver.create(T0, outcomes=[HOLD])
    d.resolve()
    s = d.state
    assert s.status == Status.ACTIVE
    assert s.awaiting_charge is None and s.dunning is None
    assert s.current_period_paid == 3000
    assert s.current_period_payment_intent == "pi_sub_1_1"
    assert s.has_access(T0)
    assert s.renewal_line == f"Renewing on {FEB29.isoformat()}"
    assert next_wakeup(s) == FEB29
    assert kinds(d.log) == ["customer.subscription.created", "charge", "grant_credits",
                            "unlock_purchased_credits", "invoice.paid",
                            "customer.subscription.updated"]
    # D16: a paid (re)subscription unlocks purchased credits an earlier term locked
    assert d.log[3].idempotency_key == "sub_1:20240131T120000Z:subscribe-unlock"
    grant = d.of(GrantCredits)[0]
    assert grant == GrantCredits(idempotency_key="sub_1:20240131T120000Z:grant",
                                 period_key="20240131T120000Z", amount=1000,
                                 period_start=T0, period_end=FEB29)
    paid, updated = d.events[1:]
    assert paid.request is None and paid.previous_attributes == {"amount_paid": 3000}
    assert updated.request is None
    assert updated.previous_attributes == {"status": "incomplete"}
    assert updated.data["status"] == "active"
    assert [e.id for e in d.events] == ["evt_sub_1_000001", "evt_sub_1_000002",
                                        "evt_sub_1_000003"]


def test_plan_without_included_credits_grants_nothing():
    plan = PRO.model_copy(update={"included_credits": 0})
    d = Driver.create(T0, plan=plan)
    assert d.state.status == Status.ACTIVE
    assert d.of(GrantCredits) == []


def test_organization_id_is_kept_when_given():
    new = NewSubscription(id="s", customer_id="c", organization_id="org_9", plan=PRO)
    assert create(new, T0).state.organization_id == "org_9"


# Free plan -------------------------------------------------------------------------------------


def test_free_plan_is_active_at_once_without_a_charge_and_grants_credits():
    d = Driver.create(T0, plan=FREE)
    s = d.state
    assert s.status == Status.ACTIVE
    assert d.charges == []
    assert kinds(d.log) == ["customer.subscription.created", "grant_credits",
                            "customer.subscription.updated"]  # no invoice.paid for 0
    assert d.of(GrantCredits)[0].amount == 100
    assert s.current_period_paid == 0 and s.current_period_payment_intent is None


def test_free_plan_renews_without_charges():
    d = Driver.create(T0, plan=FREE)
    mark = d.mark
    d.advance(at(2024, 4, 30, 12))
    assert d.charges == []
    assert kinds(d.since(mark)) == ["forfeit_credits", "grant_credits"] * 3
    assert d.state.current_period_start == at(2024, 4, 30, 12)
    assert d.state.current_period_end == at(2024, 5, 31, 12)
    assert d.state.period_index == 3


def test_free_plan_catch_up_after_a_long_gap_opens_every_missed_period_in_one_advance():
    d = Driver.create(T0, plan=FREE)
    mark = d.mark
    d.jump(at(2025, 1, 31, 12))
    assert d.steps[-1].label == "advance" and len(d.steps) == 2  # one advance did it all
    assert kinds(d.since(mark)) == ["forfeit_credits", "grant_credits"] * 12
    assert d.state.period_index == 12


# Future start (D10) ---------------------------------------------------------------------------


def test_future_start_is_scheduled_without_access_or_charge():
    start = at(2024, 3, 15, 9)
    d = Driver.create(T0, start_date=start)
    s = d.state
    assert s.status == Status.SCHEDULED
    assert kinds(d.log) == ["customer.subscription.created"]
    assert d.events[0].data["status"] == "scheduled"
    assert not s.has_access(start - SECOND)
    assert next_wakeup(s) == start
    assert s.renewal_line == f"Starts on {start.isoformat()}"
    assert s.billing_cycle_anchor == start
    assert (s.current_period_start, s.current_period_end) == (start, at(2024, 4, 15, 9))

    d.advance(start - SECOND)
    assert d.state == s and d.charges == []

    d.advance(start)
    assert d.charges[0].idempotency_key == "sub_1:20240315T090000Z:1"
    assert d.charges[0].purpose == "first_period"
    assert d.state.status == Status.ACTIVE
    assert d.state.current_period_end == at(2024, 4, 15, 9)


def test_start_date_in_the_past_starts_now():
    d = Driver.create(T0, start_date=T0 - timedelta(days=10), outcomes=[HOLD])
    assert d.state.status == Status.INCOMPLETE
    assert d.state.start_date == T0 and d.state.billing_cycle_anchor == T0


def test_start_date_equal_to_now_starts_now():
    d = Driver.create(T0, start_date=T0, outcomes=[HOLD])
    assert d.state.status == Status.INCOMPLETE


def test_future_start_with_trial_begins_trialing_at_the_start():
    start, trial_end = at(2024, 2, 10), at(2024, 2, 24)
    d = Driver.create(T0, start_date=start, trial_end=trial_end)
    assert d.state.status == Status.SCHEDULED
    assert d.state.current_period_end == trial_end
    d.advance(start)
    s = d.state
    assert s.status == Status.TRIALING
    assert (s.current_period_start, s.current_period_end) == (start, trial_end)
    assert d.charges == []
    updated = d.events[-1]
    assert updated.type == "customer.subscription.updated" and updated.request is None
    assert updated.previous_attributes == {"status": "scheduled"}
    d.advance(trial_end)
    assert d.charges[0].idempotency_key == "sub_1:20240224T000000Z:1"
    assert d.state.status == Status.ACTIVE
    assert d.state.current_period_end == at(2024, 3, 24)


# Trial --------------------------------------------------------------------------------------------


def test_trial_gives_access_without_a_charge_and_anchors_on_the_trial_end():
    trial_end = at(2024, 2, 14, 12)
    d = Driver.create(T0, trial_end=trial_end)
    s = d.state
    assert s.status == Status.TRIALING
    # no charge; the trial gives access, so locked purchased credits are usable again (D16)
    assert kinds(d.log) == ["customer.subscription.created", "unlock_purchased_credits"]
    assert s.has_access(T0)
    assert s.billing_cycle_anchor == trial_end and s.trial_end == trial_end
    assert (s.current_period_start, s.current_period_end) == (T0, trial_end)
    assert s.renewal_line == f"Trial ends on {trial_end.isoformat()}"
    assert next_wakeup(s) == trial_end


def test_trial_end_charges_the_first_period_then_renews_on_the_trial_end_anchor():
    trial_end = at(2024, 1, 31, 12) + timedelta(days=14)
    d = Driver.create(T0, trial_end=trial_end)
    d.advance(trial_end - SECOND)
    assert d.charges == []
    d.advance(trial_end)
    (charge,) = d.charges
    assert charge.purpose == "first_period" and charge.attempt == 1
    assert charge.period_key == "20240214T120000Z"
    s = d.state
    assert s.status == Status.ACTIVE
    assert (s.current_period_start, s.current_period_end) == (trial_end, at(2024, 3, 14, 12))
    assert d.of(GrantCredits)[0].period_start == trial_end
    d.advance(at(2024, 3, 14, 12))
    assert [c.period_key for c in d.charges] == ["20240214T120000Z", "20240314T120000Z"]
    assert d.charges[1].purpose == "renewal"


@pytest.mark.parametrize("trial_end", [T0, T0 - SECOND])
def test_trial_end_must_be_after_the_start(trial_end):
    with pytest.raises(RequestInvalid) as err:
        create(NewSubscription(id="s", customer_id="c", plan=PRO, trial_end=trial_end), T0)
    assert err.value.field == "trial_end" and err.value.code == "trial_end_not_after_start"
    assert err.value.http_status == 422


def test_trial_end_is_checked_against_a_future_start():
    with pytest.raises(RequestInvalid):
        create(NewSubscription(id="s", customer_id="c", plan=PRO, start_date=at(2024, 3, 1),
                               trial_end=at(2024, 2, 15)), T0)


def test_first_payment_declined_at_trial_end_removes_access():
    trial_end = at(2024, 2, 14)
    d = Driver.create(T0, trial_end=trial_end, outcomes=[DECLINE])
    d.advance(trial_end)
    s = d.state
    assert s.status == Status.INCOMPLETE
    assert not s.has_access(trial_end)
    assert s.dunning.grace_until == trial_end  # a failed first payment never grants access


# D4: resubscribing keeps the old anchor with a trial end ------------------------------------------


def test_resubscribe_with_trial_end_at_the_old_paid_through_date_is_not_billed_twice():
    old = Driver.create(T0)
    old.request(Cancel(mode="immediately"), at(2024, 2, 10))
    assert old.state.status == Status.CANCELED
    paid_through = FEB29
    new = Driver.create(at(2024, 2, 10), sub_id="sub_2", trial_end=paid_through)
    assert new.charges == []
    assert new.state.billing_cycle_anchor == paid_through
    new.advance(paid_through)
    assert new.charges[0].period_key == "20240229T120000Z"
    assert new.state.current_period_end == at(2024, 3, 29, 12)  # anchor Feb 29 now


def test_resubscribe_without_trial_starts_a_new_cycle_and_charges_at_once():
    new = Driver.create(at(2024, 2, 10), sub_id="sub_2", outcomes=[HOLD])
    assert new.charges[0].period_key == "20240210T000000Z"
    assert new.state.billing_cycle_anchor == at(2024, 2, 10)


# Time zones ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["now", "start_date", "trial_end"])
def test_naive_datetimes_are_rejected_at_creation(field):
    naive = datetime(2024, 3, 1)
    kwargs = {"start_date": None, "trial_end": None}
    now = T0
    if field == "now":
        now = naive
    else:
        kwargs[field] = naive
    with pytest.raises(ValueError, match="timezone-aware"):
        create(NewSubscription(id="s", customer_id="c", plan=PRO, **kwargs), now)


def test_custom_actor_and_policy_are_snapshotted():
    policy = BillingPolicy(retry_delays=(timedelta(days=1),), final_action="unpaid")
    operator = Actor(kind="operator", id="op_1")
    d = Driver.create(T0, policy=policy, requested_by=operator, outcomes=[HOLD])
    assert d.state.policy == policy
    assert d.events[0].request == operator


def test_the_plan_is_a_snapshot():
    plan = Plan(id="p", name="P", amount=500, currency="eur", interval="week")
    d = Driver.create(T0, plan=plan, outcomes=[HOLD])
    assert d.state.plan == plan
    assert d.charges[0].currency == "eur" and d.charges[0].amount == 500
    assert d.state.current_period_end == T0 + timedelta(weeks=1)
