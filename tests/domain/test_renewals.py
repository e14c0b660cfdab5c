"""Renewals: month ends across a leap year, yearly Feb 29, credits per period (D15), catch-up."""

from __future__ import annotations

from datetime import timedelta

from domain import lifecycle
from domain.lifecycle import next_wakeup
from domain.model import Status
from tests.domain.helpers import (
    HOLD,
    PRO,
    SECOND,
    WEEKLY,
    YEARLY,
    Charge,
    Driver,
    ForfeitCredits,
    GrantCredits,
    at,
    kinds,
)

T0 = at(2024, 1, 31, 12)
MONTH_ENDS = [at(2024, 2, 29, 12), at(2024, 3, 31, 12), at(2024, 4, 30, 12), at(2024, 5, 31, 12),
              at(2024, 6, 30, 12), at(2024, 7, 31, 12), at(2024, 8, 31, 12),
              at(2024, 9, 30, 12), at(2024, 10, 31, 12), at(2024, 11, 30, 12),
              at(2024, 12, 31, 12), at(2025, 1, 31, 12), at(2025, 2, 28, 12),
              at(2025, 3, 31, 12)]


def test_monthly_renewals_on_month_ends_across_a_leap_year():
    d = Driver.create(T0)
    ends = [d.state.current_period_end]
    for end in MONTH_ENDS[:-1]:
        d.advance(end)
        ends.append(d.state.current_period_end)
    assert ends == MONTH_ENDS
    assert [c.period_key[:8] for c in d.charges] == [
        "20240131", "20240229", "20240331", "20240430", "20240531", "20240630", "20240731",
        "20240831", "20240930", "20241031", "20241130", "20241231", "20250131", "20250228"]
    assert [c.purpose for c in d.charges] == ["first_period"] + ["renewal"] * 13
    assert all(c.attempt == 1 and c.amount == 3000 for c in d.charges)
    assert d.state.period_index == 13


def test_renewal_forfeits_the_old_period_then_charges_then_grants_the_new_one():
    d = Driver.create(T0)
    mark = d.mark
    d.advance(MONTH_ENDS[0])
    cmds = d.since(mark)
    assert kinds(cmds) == ["forfeit_credits", "charge", "grant_credits", "invoice.paid"]
    forfeit, charge, grant = cmds[0], cmds[1], cmds[2]
    assert forfeit == ForfeitCredits(idempotency_key="sub_1:20240131T120000Z:forfeit",
                                     period_key="20240131T120000Z", at=MONTH_ENDS[0])
    assert charge == Charge(idempotency_key="sub_1:20240229T120000Z:1",
                            period_key="20240229T120000Z", attempt=1, amount=3000,
                            currency="usd", purpose="renewal")
    assert grant == GrantCredits(idempotency_key="sub_1:20240229T120000Z:grant",
                                 period_key="20240229T120000Z", amount=1000,
                                 period_start=MONTH_ENDS[0], period_end=MONTH_ENDS[1])
    s = d.state
    assert s.status == Status.ACTIVE
    assert s.current_period_paid == 3000 and s.current_period_payment_intent == "pi_sub_1_2"


def test_nothing_happens_one_microsecond_before_the_period_end():
    d = Driver.create(T0)
    before = d.state
    decision = lifecycle.advance(before, MONTH_ENDS[0] - timedelta(microseconds=1))
    assert decision.state == before and decision.commands == ()


def test_renewal_waits_for_its_outcome_with_the_period_already_open():
    d = Driver.create(T0).script(HOLD)
    d.advance(MONTH_ENDS[0])
    s = d.state
    assert s.awaiting_charge == "sub_1:20240229T120000Z:1"
    assert s.status == Status.ACTIVE  # a renewal keeps access while its charge is in flight
    assert (s.current_period_start, s.current_period_end) == (MONTH_ENDS[0], MONTH_ENDS[1])
    assert s.current_period_paid == 0
    assert next_wakeup(s) is None
    again = lifecycle.advance(s, MONTH_ENDS[1] + timedelta(days=3))
    assert again.state == s and again.commands == ()  # advance stops at the charge in flight


def test_catch_up_after_downtime_stops_at_each_charge():
    d = Driver.create(T0)
    before = d.state
    first = lifecycle.advance(before, at(2024, 5, 1))
    assert kinds(first.commands) == ["forfeit_credits", "charge"]
    assert first.state.period_key == "20240229T120000Z"
    d.jump(at(2024, 5, 1))  # the driver feeds each outcome and advances again
    assert [c.period_key[:8] for c in d.charges] == ["20240131", "20240229", "20240331",
                                                     "20240430"]
    assert d.state.current_period_end == at(2024, 5, 31, 12)


def test_yearly_plan_anchored_on_feb_29():
    d = Driver.create(at(2024, 2, 29, 8), plan=YEARLY)
    for year in (2025, 2026, 2027, 2028):
        d.advance(d.state.current_period_end)
    assert [c.period_key for c in d.charges] == [
        "20240229T080000Z", "20250228T080000Z", "20260228T080000Z", "20270228T080000Z",
        "20280229T080000Z"]
    assert d.state.current_period_end == at(2029, 2, 28, 8)
    assert all(g.amount == 12000 for g in d.of(GrantCredits))


def test_weekly_plan_renews_every_seven_days():
    d = Driver.create(T0, plan=WEEKLY)
    d.advance(T0 + timedelta(weeks=4))
    assert [c.period_key for c in d.charges] == [
        "20240131T120000Z", "20240207T120000Z", "20240214T120000Z", "20240221T120000Z",
        "20240228T120000Z"]
    assert all(c.currency == "eur" and c.amount == 700 for c in d.charges)


def test_three_years_of_monthly_renewals_make_36_charges():
    d = Driver.create(T0)
    d.advance(at(2027, 1, 31, 12) - SECOND)
    assert len(d.charges) == 36
    assert len({c.idempotency_key for c in d.charges}) == 36
    starts = [c.period_key for c in d.charges]
    assert starts[1:4] == ["20240229T120000Z", "20240331T120000Z", "20240430T120000Z"]
    assert starts[13] == "20250228T120000Z" and starts[25] == "20260228T120000Z"
    assert d.state.current_period_end == at(2027, 1, 31, 12)
    assert len(d.of(GrantCredits)) == 36 and len(d.of(ForfeitCredits)) == 35


def test_renewal_events_report_invoice_paid_only():
    # The period change itself is not an updated event: only invoice.paid is emitted (see the
    # report: Stripe also sends customer.subscription.updated with the new period).
    d = Driver.create(T0)
    n = len(d.events)
    d.advance(MONTH_ENDS[0])
    assert [e.type for e in d.events[n:]] == ["invoice.paid"]


def test_interval_count_quarterly_plan():
    plan = PRO.model_copy(update={"interval_count": 3})
    d = Driver.create(T0, plan=plan)
    assert d.state.current_period_end == at(2024, 4, 30, 12)
    d.advance(at(2024, 10, 31, 12))
    assert [c.period_key[:8] for c in d.charges] == ["20240131", "20240430", "20240731",
                                                     "20241031"]
