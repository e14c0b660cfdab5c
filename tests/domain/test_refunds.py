"""Refunds of an immediate cancellation after mid-period upgrades (D6, rule version 4,
domain/refunds.py): one Refund per PaymentIntent that paid for the period (its renewal charge
and each upgrade's prorated charge), never more than that intent charged; ``prorated`` gives
back the current price for the rest of the period, ``full`` everything paid for it."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.commands import Charge, Refund
from domain.model import PaidUpgrade, SubscriptionState
from domain.plans import Plan
from domain.requests import Cancel, ChangePlan
from domain.refunds import cancellation_refunds
from tests.domain.helpers import PRO, Driver, at, examples

T0 = at(2024, 1, 31, 12)  # period Jan 31 -> Feb 29 12:00 (29 days)
END = at(2024, 2, 29, 12)
MID = at(2024, 2, 14, 3, 25, 41, 500000)  # the upgrade: 3177 for [MID, END)
LATER = at(2024, 2, 20, 12)  # the cancellation: 9 days left
PK = "20240131T120000Z"
TEAM = Plan(id="team", name="Team", amount=9000, currency="usd", interval="month")
ENTERPRISE = Plan(id="ent", name="Enterprise", amount=15000, currency="usd", interval="month")
MICRO = timedelta(microseconds=1)


def upgraded_then_canceled(mode: str) -> tuple[Driver, list[Refund]]:
    d = Driver.create(T0)  # period charge 3000, pi_sub_1_1
    d.request(ChangePlan(plan=TEAM), MID)  # proration 3177, pi_sub_1_2
    mark = d.mark
    d.request(Cancel(mode="immediately", refund=mode), LATER)
    return d, d.of(Refund, d.since(mark))


def test_an_upgrade_keeps_its_paid_charge_for_the_period():
    d = Driver.create(T0)
    d.request(ChangePlan(plan=TEAM), MID)
    assert d.state.current_period_upgrades == (PaidUpgrade(
        seq=1, amount=3177, payment_intent_id="pi_sub_1_2", covers_from=MID),)
    d.advance(END)  # renewed: the new period was paid by its own charge only
    assert d.state.current_period_upgrades == ()


def test_prorated_cancel_after_an_upgrade_refunds_both_intents():
    _, refunds = upgraded_then_canceled("prorated")
    assert refunds == [
        # 3000 * 9 days / 29 days = 931.03
        Refund(idempotency_key=f"sub_1:{PK}:refund", period_key=PK,
               payment_intent_id="pi_sub_1_1", amount=931, reason="cancellation_prorated"),
        # 3177 * 9 days / (END - MID = 15.357... days) = 1861.8
        Refund(idempotency_key=f"sub_1:{PK}:change1:refund", period_key=PK,
               payment_intent_id="pi_sub_1_2", amount=1861, reason="cancellation_prorated"),
    ]
    # Together: the new price for the 9 days left, 9000 * 9/29 = 2793.1, less rounding.
    assert sum(r.amount for r in refunds) == 2792


def test_full_refund_after_an_upgrade_returns_every_charge_of_the_period():
    _, refunds = upgraded_then_canceled("full")
    assert [(r.payment_intent_id, r.amount, r.idempotency_key) for r in refunds] == [
        ("pi_sub_1_1", 3000, f"sub_1:{PK}:refund"),
        ("pi_sub_1_2", 3177, f"sub_1:{PK}:change1:refund")]


def test_no_refund_asked_refunds_nothing_after_an_upgrade():
    assert upgraded_then_canceled("none")[1] == []


def test_two_upgrades_are_refunded_each_on_its_own_intent():
    d = Driver.create(T0)
    d.request(ChangePlan(plan=TEAM), MID)
    d.request(ChangePlan(plan=ENTERPRISE), LATER)
    mark = d.mark
    d.request(Cancel(mode="immediately", refund="full"), LATER + timedelta(days=1))
    assert [(r.payment_intent_id, r.idempotency_key) for r in d.of(Refund, d.since(mark))] == [
        ("pi_sub_1_1", f"sub_1:{PK}:refund"), ("pi_sub_1_2", f"sub_1:{PK}:change1:refund"),
        ("pi_sub_1_3", f"sub_1:{PK}:change2:refund")]


def test_an_upgrade_of_an_earlier_period_is_not_refunded():
    d = Driver.create(T0)
    d.request(ChangePlan(plan=TEAM), MID)
    mark = d.mark
    d.request(Cancel(mode="immediately", refund="full"), END + timedelta(days=3))
    (refund,) = d.of(Refund, d.since(mark))
    assert (refund.payment_intent_id, refund.amount) == ("pi_sub_1_3", 9000)


def test_a_state_without_upgrades_refunds_as_before():
    """A state written before current_period_upgrades existed has none: one Refund."""
    d = Driver.create(T0)
    state = SubscriptionState.model_validate(
        {k: v for k, v in d.state.model_dump().items() if k != "current_period_upgrades"})
    (refund,) = cancellation_refunds(state, LATER, "prorated")
    assert (refund.idempotency_key, refund.amount) == (f"sub_1:{PK}:refund", 931)


@settings(max_examples=examples(150), deadline=None)
@given(price=st.integers(min_value=1, max_value=10**7),
       extras=st.lists(st.integers(min_value=1, max_value=10**7), min_size=1, max_size=3),
       offsets=st.lists(st.integers(min_value=0, max_value=29 * 86400 * 10**6 - 1),
                        min_size=2, max_size=4),
       mode=st.sampled_from(["none", "prorated", "full"]))
def test_refunds_never_exceed_what_each_intent_paid_and_add_up_to_the_rule(
        price, extras, offsets, mode):
    """Upgrades at random instants, then a cancellation at a later one: per intent, at most
    one refund, never more than its charge; ``full`` returns every charge of the period,
    ``prorated`` the final price for the time left (never more; less only by rounding: under
    one unit per charge, plus what the upgrades' whole-second proration left uncharged)."""
    instants = sorted(T0 + timedelta(microseconds=o) for o in offsets)
    *upgrades_at, cancel_at = instants
    plans = [PRO.model_copy(update={"amount": price})]
    for n, extra in enumerate(extras[:len(upgrades_at)]):
        plans.append(TEAM.model_copy(update={"id": f"p{n}", "amount": plans[-1].amount + extra}))
    d = Driver.create(T0, plan=plans[0])
    for plan, when in zip(plans[1:], upgrades_at):
        d.request(ChangePlan(plan=plan), when)
    charged = {"pi_sub_1_1": price}
    charged.update({u.payment_intent_id: u.amount for u in d.state.current_period_upgrades
                    if u.payment_intent_id})
    assert sum(charged.values()) == sum(c.amount for c in d.charges if isinstance(c, Charge))
    mark = d.mark
    d.request(Cancel(mode="immediately", refund=mode), cancel_at)
    refunds = d.of(Refund, d.since(mark))
    by_intent = {r.payment_intent_id: r.amount for r in refunds}
    assert len(by_intent) == len(refunds)  # one refund per intent
    assert len({r.idempotency_key for r in refunds}) == len(refunds)
    assert all(0 < by_intent[i] <= charged[i] for i in by_intent)
    total = sum(by_intent.values())
    if mode == "none":
        assert refunds == []
    elif mode == "full":
        assert by_intent == charged
    else:
        period = (END - T0) // MICRO
        left = (END - cancel_at) // MICRO
        final = d.state.plan.amount
        assert final == plans[-1].amount
        assert total * period <= final * left  # never more than the time left costs
        upgrades = len(plans) - 1
        # In units of 1/period: one per rounding, and each upgrade's uncharged part second.
        slack = (1 + 2 * upgrades) * period + (final - price) * 10**6
        assert total * period >= final * left - slack
