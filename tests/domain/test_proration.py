"""Mid-period plan changes, rule version 4 (domain/proration.py, lifecycle ``_upgrade_now``):
what an upgrade is, the prorated amount (whole seconds, rounded down, exact integers), the
credits granted (D15: prorated, forfeited with the period), the events, the decline, and the
preview being the very numbers that are charged. Version 3 keeps every change at the period
end (tests/domain/test_plan_change.py runs its upgrades there)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import lifecycle, proration
from domain.commands import Charge, GrantCredits, PaymentOutcome
from domain.errors import RequestInvalid, RequestRefused
from domain.model import Status
from domain.plans import Plan
from domain.requests import Cancel, ChangePlan
from tests.domain.helpers import CUSTOMER, DECLINE, HOLD, PRO, YEARLY, Driver, at

T0 = at(2024, 1, 31, 12)  # periods: Jan 31 -> Feb 29 -> Mar 31 (12:00 UTC)
END = at(2024, 2, 29, 12)
MID = at(2024, 2, 14, 3, 25, 41, 500000)
TEAM = Plan(id="team", name="Team", amount=9000, currency="usd", interval="month",
            included_credits=4000)
BASIC = Plan(id="basic", name="Basic", amount=1000, currency="usd", interval="month",
             included_credits=200)
EURO = Plan(id="pro-eur", name="Pro EUR", amount=2800, currency="eur", interval="month")
SECOND = timedelta(seconds=1)


def test_an_upgrade_is_a_higher_price_per_unit_of_time():
    assert proration.is_upgrade(PRO, TEAM) and not proration.is_upgrade(TEAM, PRO)
    assert not proration.is_upgrade(PRO, PRO)
    # 30000 a year is 2500 a month: less than 3000 a month, so a downgrade...
    assert not proration.is_upgrade(PRO, YEARLY)
    # ...and 40000 a year (3333 a month) an upgrade, though of another term.
    assert proration.is_upgrade(PRO, YEARLY.model_copy(update={"amount": 40000}))
    weekly = Plan(id="w", name="W", amount=700, currency="usd", interval="week")
    # 700 a week is 100 a day; 3000 a month about 98.6 a day.
    assert proration.is_upgrade(PRO, weekly) and not proration.is_upgrade(weekly, PRO)
    assert not proration.is_upgrade(PRO, EURO)  # another currency is never an upgrade


def test_upgrade_charges_the_prorated_difference_now_and_switches_at_once():
    d = Driver.create(T0)
    n = len(d.charges)
    d.request(ChangePlan(plan=TEAM, requested_by=CUSTOMER), MID)
    total = (END - T0) // SECOND
    remaining = (END - MID) // SECOND  # 1,326,858.5 s: the started second is not counted
    assert remaining == 1326858
    charge = d.charges[n]
    assert isinstance(charge, Charge) and charge.purpose == "proration"
    assert charge.amount == 6000 * remaining // total == 3177
    assert charge.idempotency_key == "sub_1:20240131T120000Z:change1:team"
    s = d.state
    assert s.plan == TEAM and s.upgrade is None and s.awaiting_charge is None
    assert (s.current_period_start, s.current_period_end, s.billing_cycle_anchor) == (
        T0, END, T0)
    grant = [c for c in d.log if isinstance(c, GrantCredits)][-1]
    assert grant.amount == 3000 * remaining // total == 1588  # D15: prorated, this period
    assert (grant.period_key, grant.period_end) == ("20240131T120000Z", END)
    assert grant.idempotency_key == "sub_1:20240131T120000Z:change1:grant"
    paid, updated = d.events[-2:]
    assert paid.type == "invoice.paid" and paid.previous_attributes == {
        "amount_paid": 3177, "billing_reason": "subscription_update", "from_plan": "pro",
        "plan": "team"}
    assert updated.type == "customer.subscription.updated" and updated.request == CUSTOMER
    assert updated.previous_attributes == {"plan": "pro"}
    d.advance(END)
    assert d.charges[-1].amount == 9000  # the next period in full, on the new plan
    # Both grants of the period (renewal and upgrade) are under its key: they end with it.
    forfeits = [c for c in d.log if c.kind == "forfeit_credits"]
    assert [f.period_key for f in forfeits] == ["20240131T120000Z"] and forfeits[0].at == END


def test_the_preview_is_what_is_charged():
    d = Driver.create(T0)
    quote = lifecycle.preview_change(d.state, TEAM, MID)
    assert quote.at == MID.replace(microsecond=0) and quote.timing == "now"
    assert (quote.effective_at, quote.next_renewal_at, quote.next_renewal_amount) == (
        quote.at, END, 9000)
    later = MID + timedelta(minutes=5)
    d.request(ChangePlan(plan=TEAM, proration_date=quote.at), later)
    charge = [c for c in d.charges if c.purpose == "proration"][0]
    assert charge.amount == quote.amount_due
    grant = [c for c in d.log if isinstance(c, GrantCredits)][-1]
    assert grant.amount == quote.credits_granted


@pytest.mark.parametrize("offset", [timedelta(seconds=6), -timedelta(hours=1, seconds=1)],
                         ids=["future", "old"])
def test_a_proration_date_outside_the_last_hour_is_refused(offset):
    d = Driver.create(T0)
    with pytest.raises(RequestInvalid) as err:
        d.request(ChangePlan(plan=TEAM, proration_date=MID + offset), MID)
    assert err.value.code == "proration_date_out_of_range"
    assert err.value.field == "proration_date"
    assert d.state.plan == PRO


def test_a_proration_date_a_few_seconds_ahead_is_clock_skew():
    d = Driver.create(T0)
    ahead = MID + timedelta(seconds=5)
    d.request(ChangePlan(plan=TEAM, proration_date=ahead), MID)
    assert d.charges[-1].amount == proration.prorate(6000, T0, END, ahead)
    assert d.state.plan == TEAM


def test_a_downgrade_or_a_new_term_waits_for_the_period_end():
    d = Driver.create(T0)
    n = len(d.charges)
    quote = lifecycle.preview_change(d.state, BASIC, MID)
    assert (quote.timing, quote.amount_due, quote.effective_at) == ("period_end", 0, END)
    d.request(ChangePlan(plan=BASIC), MID)
    assert d.state.plan == PRO and d.state.pending_plan == BASIC and len(d.charges) == n
    d.request(ChangePlan(plan=YEARLY.model_copy(update={"amount": 40000})), MID)
    assert d.state.pending_plan.id == "pro-yearly" and len(d.charges) == n  # new term
    d.request(ChangePlan(plan=TEAM), MID)  # an upgrade replaces the pending change
    assert d.state.plan == TEAM and d.state.pending_plan is None
    assert d.events[-1].previous_attributes == {"plan": "pro", "pending_plan": "pro-yearly"}


def test_rule_version_3_keeps_the_upgrade_at_the_period_end():
    d = Driver.create(T0, rules=3)
    n = len(d.charges)
    assert lifecycle.preview_change(d.state, TEAM, MID).timing == "period_end"
    d.request(ChangePlan(plan=TEAM), MID)
    assert d.state.plan == PRO and d.state.pending_plan == TEAM and len(d.charges) == n
    d.request(ChangePlan(plan=EURO), MID)  # version 3 did not check the currency
    assert d.state.pending_plan == EURO


def test_another_currency_is_refused():
    d = Driver.create(T0)
    before = d.state
    with pytest.raises(RequestInvalid) as err:
        d.request(ChangePlan(plan=EURO), MID)
    assert (err.value.code, err.value.field, err.value.http_status) == (
        "currency_mismatch", "plan", 422)
    assert "EUR" in err.value.message and "USD" in err.value.message
    with pytest.raises(RequestInvalid):
        lifecycle.preview_change(d.state, EURO, MID)
    assert d.state == before


def test_a_declined_proration_leaves_the_plan_and_answers_with_the_decline():
    d = Driver.create(T0)
    events = len(d.events)
    d.script(DECLINE)
    d.request(ChangePlan(plan=TEAM), MID)
    s = d.state
    assert s.plan == PRO and s.status == Status.ACTIVE and s.dunning is None
    assert s.upgrade is None and s.awaiting_charge is None and len(d.events) == events
    charge = d.charges[-1]
    refused = lifecycle.change_declined(charge, PaymentOutcome(
        idempotency_key=charge.idempotency_key, status="declined", amount=0,
        decline_code="card_declined"), "pro")
    assert (refused.code, refused.http_status, refused.decline_code) == (
        "payment_declined", 402, "card_declined")
    d.request(ChangePlan(plan=TEAM), MID + SECOND)  # a new attempt: a new key
    assert d.charges[-1].idempotency_key.endswith(":change2:team") and d.state.plan == TEAM


def test_a_held_proration_is_charged_again_with_the_same_key_on_retry():
    from domain.requests import Retry

    d = Driver.create(T0)
    d.script(HOLD)
    d.request(ChangePlan(plan=TEAM), MID)
    key = d.pending.idempotency_key
    d.fail()
    assert d.state.hold.charge_purpose == "proration" and d.state.plan == PRO
    with pytest.raises(RequestRefused):
        d.request(ChangePlan(plan=TEAM), MID + SECOND)  # held: retry first
    d.request(Retry(), MID + 2 * SECOND)
    assert d.charges[-1].idempotency_key == key and d.charges[-1].purpose == "proration"
    assert d.charges[-1].amount == d.charges[-2].amount and d.state.plan == TEAM


def test_cancelling_while_the_proration_is_held_drops_the_upgrade():
    d = Driver.create(T0)
    d.script(HOLD)
    d.request(ChangePlan(plan=TEAM), MID)
    d.fail()
    d.request(Cancel(mode="immediately"), MID + SECOND)
    assert d.state.status == Status.CANCELED and d.state.upgrade is None
    assert d.state.plan == PRO


@given(amount=st.integers(min_value=0, max_value=10**9),
       length=st.integers(min_value=1, max_value=400 * 86400),
       elapsed=st.integers(min_value=0, max_value=400 * 86400),
       micro=st.integers(min_value=0, max_value=999999))
def test_prorated_amounts_are_exact_integers_between_zero_and_the_difference(
        amount, length, elapsed, micro):
    start = T0
    end = start + timedelta(seconds=length)
    now = start + timedelta(seconds=min(elapsed, length - 1), microseconds=micro)
    charged = proration.prorate(amount, start, end, now)
    assert isinstance(charged, int) and 0 <= charged <= amount
    remaining = (end - now) // SECOND
    # Rounded down: never more than the exact share, less by under one minor unit.
    assert charged * length <= amount * remaining < (charged + 1) * length
    # At the period start the whole difference is due; at or after its end nothing.
    assert proration.prorate(amount, start, end, start) == amount
    assert proration.prorate(amount, start, end, end) == 0


@given(current=st.integers(min_value=1, max_value=10**7),
       extra=st.integers(min_value=1, max_value=10**7),
       days=st.integers(min_value=0, max_value=28),
       seconds=st.integers(min_value=0, max_value=86399))
def test_any_upgrade_in_a_period_charges_between_zero_and_the_price_difference(
        current, extra, days, seconds):
    plan = PRO.model_copy(update={"amount": current})
    better = TEAM.model_copy(update={"amount": current + extra})
    d = Driver.create(T0, plan=plan)
    now = T0 + timedelta(days=days, seconds=seconds)
    quote = lifecycle.preview_change(d.state, better, now)
    assert quote.timing == "now" and 0 <= quote.amount_due <= extra
    d.request(ChangePlan(plan=better, proration_date=quote.at), now)
    paid = [c.amount for c in d.charges if c.purpose == "proration"]
    assert paid in ([quote.amount_due], [])  # nothing charged when it rounds to zero
    assert d.state.plan == better
