"""Mid-period plan changes (rule version 4) on the real worker: time-skipping server,
localstripe behind the fault proxy, the ledger and the event store.

- an upgrade mid-period charges exactly the previewed prorated amount, once, although the
  answer to its confirm is lost (the money moved at localstripe, the activity is retried and
  finds the stored intent instead of charging again); the plan changes now, the prorated
  extra credits are granted for the rest of the period (D15) and forfeited with it;
- a downgrade changes nothing now and applies at the period end, charging the new price;
- an immediate cancellation with a prorated refund after an upgrade refunds both intents
  that paid for the period (the period charge and the proration), each its unused share.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from config.settings import Settings
from domain import lifecycle
from domain.plans import Plan
from domain.model import Status
from domain.requests import Cancel, ChangePlan
from ledger.service import Ledger
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.workflows.proxied import proxy, settings  # noqa: F401
from tests.workflows.scenario import Scenario

pytestmark = pytest.mark.temporal

BASIC = Plan(id="basic", name="Basic", amount=900, currency="usd", interval="month",
             included_credits=100)
PRO = Plan(id="pro", name="Pro", amount=2000, currency="usd", interval="month",
           included_credits=1000)
TEAM = Plan(id="team", name="Team", amount=5000, currency="usd", interval="month",
            included_credits=4000)


async def test_upgrade_charges_the_previewed_proration_once_when_the_answer_is_lost(
        scenario: Scenario, proxy: StripeProxy, settings: Settings):
    s = await scenario.start(plan=PRO)
    assert s.rules == lifecycle.CURRENT_RULES == 4
    await scenario.sleep_until(s.current_period_start + timedelta(days=9, hours=7, seconds=13))
    quote = lifecycle.preview_change(await scenario.state(), TEAM, await scenario.now())
    assert quote.timing == "now" and 0 < quote.amount_due < TEAM.amount - PRO.amount
    assert 0 < quote.credits_granted < TEAM.included_credits - PRO.included_credits

    proxy.faults.append(Fault("POST", "/v1/payment_intents", "lose_response",
                              path_suffix="/confirm"))
    after = await scenario.send(ChangePlan(plan=TEAM, proration_date=quote.at))
    assert after.plan == TEAM and after.upgrade is None and after.pending_plan is None
    assert (after.current_period_start, after.current_period_end) == (
        s.current_period_start, s.current_period_end)
    assert ("POST", "lose_response") in {(m, what) for m, _, what in proxy.log}

    prorations = [c for c in scenario.charges() if c.purpose == "proration"]
    assert [(c.amount, c.status) for c in prorations] == [(quote.amount_due, "succeeded")]
    assert prorations[0].idempotency_key == f"{s.id}:{s.period_key}:change1:team"
    intents = [pi for pi in scenario.stripe_intents()
               if pi["metadata"].get("purpose") == "proration"]
    assert [(pi["amount"], pi["status"]) for pi in intents] == [(quote.amount_due, "succeeded")]

    await scenario.until(lambda st: st.plan == TEAM)
    types = [(e.type, e.previous_attributes) for e in scenario.events()][-2:]
    assert types == [
        ("invoice.paid", {"amount_paid": quote.amount_due, "billing_reason":
                          "subscription_update", "from_plan": "pro", "plan": "team"}),
        ("customer.subscription.updated", {"plan": "pro"})]
    ledger = Ledger(scenario.engine, settings.credits)
    customer = after.customer_id
    assert ledger.balances(customer, await scenario.now()).subscription == \
        PRO.included_credits + quote.credits_granted

    # The next period is the new plan's, in full; the upgrade's credits ended with theirs.
    await scenario.sleep_until(s.current_period_end + timedelta(minutes=1))
    renewed = await scenario.until(lambda st: st.current_period_start == s.current_period_end)
    assert scenario.charges()[-1].amount == TEAM.amount and renewed.plan == TEAM
    assert ledger.balances(customer, await scenario.now()).subscription == \
        TEAM.included_credits


async def test_downgrade_waits_for_the_period_end(scenario: Scenario):
    s = await scenario.start(plan=PRO)
    await scenario.sleep_until(s.current_period_start + timedelta(days=12))
    quote = lifecycle.preview_change(await scenario.state(), BASIC, await scenario.now())
    assert (quote.timing, quote.amount_due, quote.effective_at) == (
        "period_end", 0, s.current_period_end)
    n = len(scenario.charges())
    changed = await scenario.send(ChangePlan(plan=BASIC))
    assert changed.plan == PRO and changed.pending_plan == BASIC
    assert len(scenario.charges()) == n

    await scenario.sleep_until(s.current_period_end + timedelta(minutes=1))
    renewed = await scenario.until(lambda st: st.current_period_start == s.current_period_end)
    assert renewed.plan == BASIC and renewed.pending_plan is None
    assert [c.amount for c in scenario.charges()[n:]] == [BASIC.amount]


async def test_prorated_cancel_after_an_upgrade_refunds_both_intents_at_stripe(
        scenario: Scenario):
    """D6 after rule version 4's upgrade: one refund per PaymentIntent, exact amounts."""
    s = await scenario.start(plan=PRO)
    start, end = s.current_period_start, s.current_period_end
    await scenario.sleep_until(start + timedelta(days=9, hours=7, seconds=13))
    quote = lifecycle.preview_change(await scenario.state(), TEAM, await scenario.now())
    upgraded = await scenario.send(ChangePlan(plan=TEAM, proration_date=quote.at))
    (paid,) = upgraded.current_period_upgrades
    assert (paid.amount, paid.covers_from) == (quote.amount_due, quote.at)

    await scenario.sleep_until(start + timedelta(days=20))
    await scenario.send(Cancel(mode="immediately", refund="prorated"))
    final = await scenario.finished()
    assert final.status == Status.CANCELED

    micro = timedelta(microseconds=1)
    left = (end - final.ended_at) // micro
    expected = {  # each charge's unused share of the time it paid for
        s.current_period_payment_intent: PRO.amount * left // ((end - start) // micro),
        paid.payment_intent_id: quote.amount_due * left // ((end - quote.at) // micro)}
    assert all(0 < amount for amount in expected.values()) and len(expected) == 2
    rows = scenario.refunds()
    assert {r.payment_intent_id: (r.amount, r.status) for r in rows} == {
        intent: (amount, "succeeded") for intent, amount in expected.items()}
    assert sorted(r.idempotency_key for r in rows) == [
        f"{s.id}:{s.period_key}:change1:refund", f"{s.id}:{s.period_key}:refund"]
    for intent, amount in expected.items():
        at_stripe = scenario.stripe_refunds(intent)
        assert [r["amount"] for r in at_stripe] == [amount], intent
        assert at_stripe[0]["id"] in {r.stripe_refund_id for r in rows}
    # Together about the new price for the days left (TEAM over ~9 of ~30 days).
    total = sum(expected.values())
    assert total * ((end - start) // micro) <= TEAM.amount * left
