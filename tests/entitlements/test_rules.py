"""D13 entitlements on states the real core produces: paid through the term, free after it."""

from __future__ import annotations

from datetime import timedelta

from domain.entitlements import FREE_SEATS, entitlements
from domain.requests import Cancel
from tests.domain.helpers import DECLINE, FREE, PRO, Driver, at

PRO_TEAM = PRO.model_copy(update={"features": ("pro_models", "team_seats")})


def ent(states, now):
    return entitlements(states, now, free_plan=FREE, free_daily_credits=100)


def test_paid_term_then_free_plan_after_a_scheduled_cancel():
    d = Driver.create(at(2026, 1, 10), plan=PRO_TEAM)
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 20))
    during = ent([d.state], at(2026, 2, 9))
    assert during.paid and during.plan == "pro" and during.seats is None  # D2: access kept
    assert during.features == ("pro_models", "team_seats")
    assert during.free_daily_credits == 0 and during.paid_through == at(2026, 2, 10)
    d.advance(at(2026, 2, 10, 0, 0, 1))
    after = ent([d.state], at(2026, 2, 10, 0, 0, 1))
    assert not after.paid and after.plan == "free"
    assert after.features == () and after.seats == FREE_SEATS  # Pro models and seats removed
    assert after.free_daily_credits == 100  # D18 starts


def test_dunning_grace_keeps_features_then_auto_cancel_removes_them():
    d = Driver.create(at(2026, 1, 10), plan=PRO_TEAM)
    d.script(DECLINE, DECLINE, DECLINE, DECLINE)
    d.advance(at(2026, 2, 11))
    assert d.state.status == "past_due"
    assert ent([d.state], at(2026, 2, 11)).paid  # inside the grace period (D9)
    assert not ent([d.state], at(2026, 2, 10) + timedelta(days=6)).paid  # grace over
    d.advance(at(2026, 4, 1))
    assert d.state.status == "canceled" and not ent([d.state], at(2026, 4, 1)).paid


def test_no_subscription_or_only_free_plans_is_the_free_plan():
    assert ent([], at(2026, 1, 1)).plan == "free"
    d = Driver.create(at(2026, 1, 10), plan=FREE)
    result = ent([d.state], at(2026, 1, 11))
    assert not result.paid and result.free_daily_credits == 100


def test_the_latest_paid_subscription_grants_and_features_combine():
    a = Driver.create(at(2026, 1, 10), plan=PRO, sub_id="sub_a")
    b = Driver.create(at(2026, 1, 20), plan=PRO_TEAM, sub_id="sub_b")
    result = ent([a.state, b.state], at(2026, 1, 21))
    assert result.subscription == "sub_b" and result.paid_through == at(2026, 2, 20)
    assert result.features == ("pro_models", "team_seats") and result.seats is None
    only_a = ent([a.state], at(2026, 1, 21))
    assert only_a.seats == FREE_SEATS  # a paid plan without team seats
