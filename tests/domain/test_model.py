"""Derived views of the state (renewal line, access, snapshot) and value objects."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from domain.model import BillingPolicy, Dunning, Status, SubscriptionState
from domain.plans import Plan
from tests.domain.helpers import PRO, at

T0 = at(2024, 1, 31, 12)
END = at(2024, 2, 29, 12)


def state(**update) -> SubscriptionState:
    base = SubscriptionState(id="s", customer_id="c", organization_id="o", plan=PRO,
                             status=Status.ACTIVE, created=T0, start_date=T0,
                             billing_cycle_anchor=T0, current_period_start=T0,
                             current_period_end=END)
    return base.model_copy(update=update)


@pytest.mark.parametrize(("update", "line"), [
    ({}, f"Renewing on {END.isoformat()}"),
    ({"status": Status.PAST_DUE}, f"Renewing on {END.isoformat()}"),
    ({"status": Status.NON_RENEWING, "cancel_at": END}, f"Cancelling on {END.isoformat()}"),
    ({"cancel_at": at(2024, 4, 1)}, f"Cancelling on {at(2024, 4, 1).isoformat()}"),
    ({"status": Status.TRIALING}, f"Trial ends on {END.isoformat()}"),
    ({"status": Status.SCHEDULED}, f"Starts on {T0.isoformat()}"),
    ({"status": Status.INCOMPLETE}, None),
    ({"status": Status.UNPAID}, None),
    ({"status": Status.CANCELED, "cancel_at": END}, None),
])
def test_renewal_line(update, line):
    assert state(**update).renewal_line == line


@pytest.mark.parametrize(("status", "access"), [
    (Status.TRIALING, True), (Status.ACTIVE, True), (Status.NON_RENEWING, True),
    (Status.SCHEDULED, False), (Status.INCOMPLETE, False), (Status.UNPAID, False),
    (Status.PAUSED, False), (Status.CANCELED, False), (Status.PAST_DUE, False),
])
def test_access_by_status(status, access):
    assert state(status=status).has_access(T0) is access


def test_past_due_access_ends_with_the_grace_period():
    s = state(status=Status.PAST_DUE, dunning=Dunning(period_key="k", attempts=1,
                                                      next_retry_at=None, grace_until=END))
    assert s.has_access(END - timedelta(microseconds=1)) and not s.has_access(END)


def test_snapshot_has_stripe_like_fields():
    snap = state(cancel_at=END, cancel_at_period_end=True).snapshot()
    assert snap == {
        "id": "s", "object": "subscription", "customer": "c", "organization": "o",
        "plan": "pro", "status": "active", "current_period_start": T0.isoformat(),
        "current_period_end": END.isoformat(), "cancel_at": END.isoformat(),
        "cancel_at_period_end": True, "canceled_at": None, "ended_at": None,
        "cancellation_details": None,
        # what the read model stores so a list item equals the subscription (issue: list == get)
        "created": T0.isoformat(), "start_date": T0.isoformat(),
        "billing_cycle_anchor": T0.isoformat(), "trial_end": None,
        "renewal": {"line": f"Cancelling on {END.isoformat()}", "date": END.isoformat()}}


def test_state_is_immutable():
    with pytest.raises(ValidationError):
        state().status = Status.CANCELED  # type: ignore[misc]


def test_period_key_and_anchor_boundaries():
    s = state()
    assert s.period_key == "20240131T120000Z"
    assert [s.anchor_boundary(i) for i in range(3)] == [T0, END, at(2024, 3, 31, 12)]


def test_policy_defaults():
    p = BillingPolicy()
    assert p.retry_delays == (timedelta(days=3), timedelta(days=5), timedelta(days=7))
    assert p.max_attempts == 4
    assert p.grace_period == timedelta(days=5)
    assert p.final_action == "cancel"


@pytest.mark.parametrize("bad", [
    {"id": "Pro"}, {"id": ""}, {"amount": -1}, {"currency": "USD"}, {"currency": "us"},
    {"interval": "fortnight"}, {"interval_count": 0}, {"interval_count": 1001},
    {"included_credits": -5},
])
def test_plan_validation(bad):
    fields = {"id": "pro", "name": "Pro", "amount": 1, "currency": "usd", "interval": "month"}
    with pytest.raises(ValidationError):
        Plan(**(fields | bad))


def test_plan_is_free_only_at_zero():
    assert PRO.model_copy(update={"amount": 0}).is_free and not PRO.is_free
