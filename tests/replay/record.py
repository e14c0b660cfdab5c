"""Record the workflow histories that tests/replay/test_replay.py replays (run by hand).

    .venv/bin/python -m tests.replay.record            # every scenario, into CURRENT
    .venv/bin/python -m tests.replay.record dunning_recovers trial
    .venv/bin/python -m tests.replay.record --out /tmp/try trial   # try a scenario out

Each scenario drives one subscription through the real worker (workflow + every activity) on a
fresh time-skipping Temporal server, localstripe and a throw-away SQLite file, then writes the
history of every run of the workflow (continue-as-new starts a new run) to
``histories/<generation>/<scenario>-run<N>.json``. Re-record only on purpose: the committed
files are the histories that running subscriptions in production would have, so replaying them
proves a workflow change is safe for those subscriptions. A change that fails the replay goes
behind ``workflow.patched`` (README: "Changing the workflow safely"); it does not get
re-recorded away. Once it is in, its histories are recorded as a new generation (a new
directory, ``CURRENT`` below) beside the old ones, which stay and keep being replayed.

Together the scenarios send every request type and reach every status (test_coverage.py
fails otherwise): add one when a request or status is added.

Generations: ``per-write`` (one activity per ledger or event write, before
PATCH_BATCHED_EFFECTS), ``batched`` (the local writes of a decision in one local activity,
search attributes upserted on change), ``held`` (a call only an operator can fix holds the
subscription, PATCH_HOLD_ON_FAILED_CALL; adds the held scenarios) and ``rules-v2`` (the state
carries its rule version, PATCH_RULE_VERSIONS; adds pause/resume, plan changes, the retention
offer, the unlock on subscribe, a trial, a scheduled start and the unpaid policy with a late
recovery) and ``rules-v3`` (decline-aware dunning, PATCH_RULES_V3; adds a hard decline that
waits for a new card until the grace ends, a 3-D Secure decline recovered by a new card, and
a version-2 subscription whose hard decline is retried on the schedule before it moves to
version 3) and ``rules-v4`` (mid-period upgrades prorated at once, PATCH_RULES_V4; adds an
upgrade whose proration is declined, then charged once although its answer is lost, and a
version-3 subscription whose upgrade waits for the period end before it moves to version 4;
recorded with PATCH_RUNS_SPAN_PERIODS, so plain renewals stay in one run; the small
``runs-span-periods`` generation before it was recorded on rule version 3) and
``kept-timer`` (the main loop keeps its timer across a request that leaves the next wake-up
where it was, PATCH_KEPT_TIMER; the same scenarios).
Stripe is reached through tests/faults/stripe_proxy.py, so a scenario can make it
fail.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.types import CreditPurchase
from config.plans import load_catalog
from config.settings import DunningSettings, Settings, TemporalSettings
from domain import purchases
from domain import lifecycle
from domain.commands import PaymentOutcome
from domain.errors import RequestRefused
from domain.lifecycle import NewSubscription
from domain.model import Actor, SubscriptionState
from domain.plans import Plan
from domain.requests import (AcceptRetentionOffer, Cancel, ChangePlan, Pause,
                             PaymentMethodUpdated, Postpone, Reactivate, Resume, Retry)
from ledger.service import Ledger
from payments.gateway import StripeGateway
from payments.service import PaymentService
from store.engine import get_engine
from store.migrate import upgrade
from tests.fakes_stripe import CARD_DECLINED, CARD_OK, start_localstripe, stripe_settings
from tests.faults.stripe_proxy import Fault, StripeProxy
from tests.support.temporal import time_skipping_env
from workers.main import build_worker
from workflows import client_ops, contract, purchase_ops
from workflows.subscription import SubscriptionWorkflow
from workflows.types import SubscriptionInput

HISTORIES = Path(__file__).resolve().parent / "histories"
CURRENT = HISTORIES / "kept-timer"  # the newest generation: where recordings go
MINUTE = timedelta(minutes=1)


class Run:
    """One scenario's stack: settings, the environment, a payments service for customers."""

    def __init__(self, env: WorkflowEnvironment, settings: Settings, name: str,
                 proxy: StripeProxy) -> None:
        self.env, self.settings, self.name, self.proxy = env, settings, name, proxy
        self.sub_id = f"sub_replay_{name}"
        self.payments = PaymentService(get_engine(settings.database_url),
                                       StripeGateway(settings.stripe))

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def customer(self) -> str:
        return f"cus_replay_{self.name}"

    def plan(self, plan_id: str) -> Plan:
        plan = load_catalog(self.settings.plans_file).get(plan_id)
        assert plan is not None, plan_id
        return plan

    async def start(self, card: str = CARD_OK, status: str = "active",
                    sub_id: str | None = None, **new: Any) -> SubscriptionState:
        """Start a subscription (the recorded one unless ``sub_id`` names another) on
        pro-monthly, with the policy the settings give, and wait until it is ``status``.
        ``new`` is passed to NewSubscription (start_date, trial_end)."""
        if not self.payments.get_customer(self.customer):
            self.payments.create_customer(self.customer, email=f"{self.customer}@example.com",
                                          name="Ada")
        self.card(card)
        await client_ops.start(self.client, NewSubscription(
            id=sub_id or self.sub_id, customer_id=self.customer, organization_id="org_replay",
            plan=self.plan("pro-monthly"), policy=client_ops.policy_from_settings(self.settings),
            requested_by=Actor(kind="operator", id="replay"), **new),
            self.settings.temporal.task_queue)
        return await self.wait(lambda s: s.status.value == status and s.awaiting_charge is None,
                               sub_id=sub_id)

    def card(self, number: str) -> None:
        self.payments.add_test_card(self.customer, number)

    async def state(self, sub_id: str | None = None) -> SubscriptionState:
        # Bounded: a query that reaches a run just as it continues as new can hang until its
        # RPC deadline; the next poll asks the new run.
        return await client_ops.get_state(self.client, sub_id or self.sub_id,
                                          timeout=timedelta(seconds=3))

    async def wait(self, done: Callable[[SubscriptionState], bool], timeout: float = 30.0,
                   sub_id: str | None = None) -> SubscriptionState:
        """Poll (real time) until the workflow reached a state; time does not move meanwhile."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                state = await self.state(sub_id)
                if done(state):
                    return state
            except Exception:  # noqa: BLE001 - between runs (continue-as-new) a query can fail
                pass
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{self.name}: state not reached; last "
                                     f"{await self.state(sub_id)}")
            await asyncio.sleep(0.1)

    async def exhaust_dunning(self) -> SubscriptionState:
        """The card declines from the next renewal on: the state after the last retry."""
        s = await self.state()
        self.card(CARD_DECLINED)
        await self.skip_to(s.current_period_end + MINUTE)
        s = await self.wait(lambda s: s.status.value == "past_due" and s.awaiting_charge is None)
        while s.status.value == "past_due":
            attempts = s.dunning.attempts
            await self.skip_to(s.dunning.next_retry_at + MINUTE)
            s = await self.wait(lambda s: s.awaiting_charge is None and (
                s.status.value != "past_due" or s.dunning.attempts > attempts))
        return s

    async def skip_to(self, when) -> None:
        await self.env.sleep(max(when - await self.env.get_current_time(), timedelta(0)))

    async def renew(self) -> SubscriptionState:
        before = await self.state()
        await self.skip_to(before.current_period_end + MINUTE)
        # A new term (plan change, resume with reset) restarts period_index at 0.
        return await self.wait(lambda s: s.current_period_start > before.current_period_start
                               and s.awaiting_charge is None)


# Scenarios ----------------------------------------------------------------------------------


async def renewals(run: Run) -> None:
    """Two renewals, each charging and granting credits (before PATCH_RUNS_SPAN_PERIODS each
    continued as new; since, both are in one run)."""
    await run.start()
    await run.renew()
    await run.renew()


async def cancel_at_period_end(run: Run) -> None:
    await run.start()
    s = await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end",
                                                              feedback="too_expensive"))
    await run.skip_to(s.current_period_end + MINUTE)
    await run.wait(lambda s: s.status.value == "canceled")


async def cancel_immediately_refund(run: Run) -> None:
    s = await run.start()
    await run.skip_to(s.current_period_start + timedelta(days=10))
    await client_ops.send(run.client, run.sub_id, Cancel(mode="immediately", refund="prorated"))
    await run.wait(lambda s: s.status.value == "canceled")


async def reactivate(run: Run) -> None:
    await run.start()
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
    await client_ops.signal(run.client, run.sub_id, Cancel(mode="at_period_end"))  # refused
    await client_ops.send(run.client, run.sub_id, Reactivate())
    await run.renew()


async def postpone(run: Run) -> None:
    s = await run.start()
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
    later = s.current_period_end + timedelta(days=3)
    await client_ops.send(run.client, run.sub_id, Postpone(cancel_at=later))
    await run.skip_to(later + MINUTE)
    await run.wait(lambda s: s.status.value == "canceled")


async def dunning_recovers(run: Run) -> None:
    """A declined renewal, one failed retry, then a new card retries at once and succeeds."""
    s = await run.start()
    run.card(CARD_DECLINED)
    await run.skip_to(s.current_period_end + MINUTE)
    s = await run.wait(lambda s: s.status.value == "past_due" and s.awaiting_charge is None)
    await run.skip_to(s.dunning.next_retry_at + MINUTE)
    await run.wait(lambda s: s.dunning is not None and s.dunning.attempts >= 2
                   and s.awaiting_charge is None)
    run.card(CARD_OK)
    await client_ops.send(run.client, run.sub_id, PaymentMethodUpdated())
    await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None)


async def dunning_cancels(run: Run) -> None:
    """Every retry declines: after the last attempt the subscription is cancelled (D9)."""
    await run.start()
    s = await run.exhaust_dunning()
    assert s.status.value == "canceled", s.status


BAD_KEY = {"type": "invalid_request_error", "message": "Invalid API Key provided"}


async def held_charge(run: Run) -> None:
    """The renewal's charge meets a rejected key: held; a cancel and a reactivate are answered
    meanwhile; the operator's retry (a signal) pays the renewal."""
    s = await run.start()
    run.proxy.inject(Fault("POST", "/v1/payment_intents", "status", status=401, error=BAD_KEY))
    await run.skip_to(s.current_period_end + MINUTE)
    await run.wait(lambda s: s.hold is not None)
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
    await client_ops.send(run.client, run.sub_id, Reactivate())
    await client_ops.signal(run.client, run.sub_id, Retry())
    await run.wait(lambda s: s.hold is None and s.period_index == 1
                   and s.awaiting_charge is None)


async def held_refund(run: Run) -> None:
    """An immediate cancellation's refund meets a rejected key: held in the middle of the
    cancellation; the operator's retry (an update) refunds and ends it."""
    s = await run.start()
    await run.skip_to(s.current_period_start + timedelta(days=10))
    run.proxy.inject(Fault("POST", "/v1/refunds", "status", status=401, error=BAD_KEY))
    await client_ops.signal(run.client, run.sub_id, Cancel(mode="immediately",
                                                           refund="prorated"))
    await run.wait(lambda s: s.hold is not None)
    await client_ops.send(run.client, run.sub_id, Retry())
    await run.wait(lambda s: s.status.value == "canceled")


async def pause_now_resume_at(run: Run) -> None:
    """D12: paused at once until a date past the paid period: its credits are forfeited at
    its end, and resume_at resumes on the anchor with a charge for the period containing it."""
    s = await run.start()
    resume_at = s.current_period_end + timedelta(days=10)
    await client_ops.send(run.client, run.sub_id, Pause(mode="now", resume_at=resume_at))
    await run.skip_to(resume_at + MINUTE)
    await run.wait(lambda s: s.status.value == "active" and s.period_index == 1
                   and s.awaiting_charge is None)


async def pause_resume_keep(run: Run) -> None:
    """D12: a pause scheduled for the period end (a signal) takes effect there; a resume
    (keep) in the next period charges that period on the old anchor."""
    s = await run.start()
    await client_ops.signal(run.client, run.sub_id, Pause(mode="at_period_end"))
    await run.wait(lambda s: s.pause is not None)
    await run.skip_to(s.current_period_end + timedelta(days=5))
    await run.wait(lambda s: s.status.value == "paused")
    await client_ops.send(run.client, run.sub_id, Resume(anchor="keep"))
    await run.wait(lambda s: s.status.value == "active" and s.period_index == 1
                   and s.awaiting_charge is None)


async def pause_resume_reset(run: Run) -> None:
    """D12: a pause at the period end; a resume (reset) moves the anchor to now and charges a
    new period from there."""
    s = await run.start()
    await client_ops.send(run.client, run.sub_id, Pause(mode="at_period_end"))
    await run.skip_to(s.current_period_end + timedelta(days=5))
    await run.wait(lambda s: s.status.value == "paused")
    await client_ops.signal(run.client, run.sub_id, Resume(anchor="reset"))
    await run.wait(lambda s: s.status.value == "active" and s.pause is None
                   and s.awaiting_charge is None)
    await run.renew()


async def change_plan(run: Run) -> None:
    """D11: a change to the yearly plan waits for the period end; the renewal charges the
    new plan and starts a yearly cycle there."""
    await run.start()
    await client_ops.send(run.client, run.sub_id, ChangePlan(plan=run.plan("pro-yearly")))
    s = await run.renew()
    assert s.plan.id == "pro-yearly", s.plan


async def change_plan_reactivates(run: Run) -> None:
    """D11: a non_renewing subscription switched (a signal) to a plan with another term
    renews again, on the new plan."""
    await run.start()
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
    await client_ops.signal(run.client, run.sub_id, ChangePlan(plan=run.plan("pro-yearly")))
    await run.wait(lambda s: s.status.value == "active" and s.pending_plan is not None)
    s = await run.renew()
    assert (s.plan.id, s.status.value) == ("pro-yearly", "active"), s


async def retention_offer(run: Run) -> None:
    """D14: a cancellation, then the retention offer taken instead: the cancellation is
    removed and the next renewals are charged at the reduced price."""
    await run.start()
    await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end",
                                                          feedback="too_expensive"))
    await client_ops.send(run.client, run.sub_id, AcceptRetentionOffer())
    s = await run.renew()
    assert s.current_period_paid < s.plan.amount, s.current_period_paid
    await run.renew()


async def unlock_on_subscribe(run: Run) -> None:
    """D16: credits bought during an earlier subscription lock when it ends; the first paid
    period of the customer's new subscription (the recorded one) unlocks them."""
    earlier = f"{run.sub_id}_earlier"
    await run.start(sub_id=earlier)
    now = await run.env.get_current_time()
    bought = await purchase_ops.buy(run.client, CreditPurchase(
        idempotency_key=purchases.topup_key(run.customer, "replay"), customer_id=run.customer,
        purpose="topup", credits=500, amount=purchases.price(500), currency=purchases.CURRENCY,
        at=now), run.settings.temporal.task_queue)
    assert bought.status == "credited", bought
    await client_ops.send(run.client, earlier, Cancel(mode="immediately"))
    ledger = Ledger(get_engine(run.settings.database_url), run.settings.credits)
    assert ledger.balances(run.customer, await run.env.get_current_time()).locked_purchased
    await run.start()
    held = ledger.balances(run.customer, await run.env.get_current_time())
    assert (held.purchased, held.locked_purchased) == (500, 0), held


async def trial(run: Run) -> None:
    """A trial gives access uncharged until trial_end, where the first period is charged."""
    now = await run.env.get_current_time()
    s = await run.start(status="trialing", trial_end=now + timedelta(days=14))
    await run.skip_to(s.trial_end + MINUTE)
    await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None)


async def scheduled_start(run: Run) -> None:
    """D10: a start date in the future: scheduled until then, charged when it arrives."""
    now = await run.env.get_current_time()
    s = await run.start(status="scheduled", start_date=now + timedelta(days=7))
    await run.skip_to(s.start_date + MINUTE)
    await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None)
    await run.renew()


async def unpaid_recovers_late(run: Run) -> None:
    """D9 with final_action=unpaid: every retry declines, the subscription turns unpaid and
    waits more than a period past the unpaid period's end; a new card (a signal) pays that
    period, and the late recovery (rule version 2) skips the period that ended meanwhile and
    charges the one containing now."""
    run.settings = run.settings.model_copy(update={
        "dunning": DunningSettings(final_action="unpaid")})
    await run.start()
    s = await run.exhaust_dunning()
    assert s.status.value == "unpaid", s.status
    unpaid = s
    await run.skip_to(s.current_period_end + timedelta(days=40))
    run.card(CARD_OK)
    await client_ops.signal(run.client, run.sub_id, PaymentMethodUpdated())
    s = await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None
                       and s.period_index > unpaid.period_index)
    assert s.period_index == unpaid.period_index + 2, s.period_index  # one period skipped


async def v1_unpaid_recovers_late(run: Run) -> None:
    """unpaid_recovers_late for a subscription still on rule version 1: a run started with the
    state an older run handed on (active and paid, no rule version), as after a deploy. The
    late recovery charges every period that ended meanwhile, back to back; the next run
    (continue-as-new after those renewals) is on the current rules."""
    run.settings = run.settings.model_copy(update={
        "dunning": DunningSettings(final_action="unpaid")})
    paid = await _paid_on_rules(run, 1)
    carried = paid.model_dump(mode="json")
    del carried["rules"]  # what code from before rule versions wrote
    await run.client.start_workflow(
        SubscriptionWorkflow.run, SubscriptionInput.model_validate({"state": carried}),
        id=contract.workflow_id(run.sub_id), task_queue=run.settings.temporal.task_queue)
    s = await run.exhaust_dunning()
    assert s.status.value == "unpaid" and s.rules == 1, s
    unpaid = s
    await run.skip_to(s.current_period_end + timedelta(days=40))
    run.card(CARD_OK)
    await client_ops.signal(run.client, run.sub_id, PaymentMethodUpdated())
    s = await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None
                       and s.period_index >= unpaid.period_index + 2)
    assert s.rules == lifecycle.CURRENT_RULES, s.rules  # moved on at continue-as-new


CARD_3DS = "4000002500003155"  # localstripe: every confirm needs authentication
LOST_CARD = Fault("POST", "/v1/payment_intents", "status", status=402, path_suffix="/confirm",
                  error={"type": "card_error", "code": "card_declined",
                         "decline_code": "lost_card", "message": "Your card was declined."})


async def hard_decline(run: Run) -> None:
    """Rule version 3 (D9): a soft decline at the renewal is retried on the schedule; the
    retry meets a hard decline (lost_card, through the proxy), which is never retried: the
    subscription waits for a new card until the grace ends (or the retry it replaced, if
    later), then is cancelled. The retry runs in the second run (the renewal continued as new),
    so the wait and the end are decided by one run's commands."""
    s = await run.start()
    run.card(CARD_DECLINED)
    await run.skip_to(s.current_period_end + MINUTE)
    s = await run.wait(lambda s: s.status.value == "past_due" and s.awaiting_charge is None)
    assert s.dunning.requires is None and s.dunning.next_retry_at is not None, s
    run.proxy.inject(LOST_CARD)
    await run.skip_to(s.dunning.next_retry_at + MINUTE)
    s = await run.wait(lambda s: s.dunning is not None and s.dunning.attempts == 2
                       and s.awaiting_charge is None)
    assert s.dunning.requires == "payment_method" and s.dunning.next_retry_at is None, s
    await run.skip_to(s.dunning.ends_at + MINUTE)
    s = await run.wait(lambda s: s.status.value == "canceled")
    assert s.cancellation.reason == "payment_failed", s


async def action_required_recovers(run: Run) -> None:
    """Rule version 3: a renewal needing 3-D Secure asks the customer to act instead of
    retrying; a new card (an update) pays at once and the next renewal is charged as usual."""
    s = await run.start()
    run.card(CARD_3DS)
    await run.skip_to(s.current_period_end + MINUTE)
    s = await run.wait(lambda s: s.status.value == "past_due" and s.awaiting_charge is None)
    assert s.dunning.requires == "authentication", s
    run.card(CARD_OK)
    await client_ops.send(run.client, run.sub_id, PaymentMethodUpdated())
    await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None)
    await run.renew()


async def _paid_on_rules(run: Run, rules: int) -> SubscriptionState:
    """The state an older run would hand on: a paid first period on rule version ``rules``
    (the customer exists at Stripe with a good card)."""
    if not run.payments.get_customer(run.customer):
        run.payments.create_customer(run.customer, email=f"{run.customer}@example.com",
                                     name="Ada")
    run.card(CARD_OK)
    now = await run.env.get_current_time()
    created = lifecycle.create(NewSubscription(
        id=run.sub_id, customer_id=run.customer, organization_id="org_replay",
        plan=run.plan("pro-monthly"), policy=client_ops.policy_from_settings(run.settings),
        requested_by=Actor(kind="operator", id="replay")), now, rules=rules).state
    return lifecycle.apply_outcome(created, PaymentOutcome(
        idempotency_key=created.awaiting_charge, status="succeeded",
        amount=created.plan.amount, payment_intent_id="pi_earlier_run"), now).state


async def _started_on_rules(run: Run, rules: int) -> SubscriptionState:
    """A paid, active subscription on an older rule version, as a run started with the state
    an older run handed on (what a subscription from before that version's patch carries)."""
    paid = await _paid_on_rules(run, rules)
    await run.client.start_workflow(
        SubscriptionWorkflow.run, SubscriptionInput(state=paid),
        id=contract.workflow_id(run.sub_id), task_queue=run.settings.temporal.task_queue)
    return await run.wait(lambda s: s.status.value == "active")


async def v2_hard_decline_retried(run: Run) -> None:
    """A subscription still on rule version 2 (a run started with the state an older run
    handed on): a soft decline at the renewal, then a hard one on the retry, which version 2
    retries on the schedule; that retry pays, and the next renewal's continue-as-new moves it
    to version 3."""
    s = await _started_on_rules(run, 2)
    run.card(CARD_DECLINED)
    await run.skip_to(s.current_period_end + MINUTE)
    s = await run.wait(lambda s: s.status.value == "past_due" and s.awaiting_charge is None)
    run.proxy.inject(LOST_CARD)
    await run.skip_to(s.dunning.next_retry_at + MINUTE)
    s = await run.wait(lambda s: s.dunning is not None and s.dunning.attempts == 2
                       and s.awaiting_charge is None)
    assert s.rules == 2 and s.dunning.next_retry_at is not None, s  # retried, as v2 does
    run.card(CARD_OK)
    await run.skip_to(s.dunning.next_retry_at + MINUTE)
    s = await run.wait(lambda s: s.status.value == "active" and s.awaiting_charge is None)
    s = await run.renew()
    assert s.rules == lifecycle.CURRENT_RULES, s.rules


async def upgrade_now(run: Run) -> None:
    """Rule version 4: an upgrade mid-period whose prorated charge is declined (the update is
    refused, the plan stays), then, with a good card, charged from the preview's instant (the
    answer to its confirm is lost once: the activity retries and finds the stored intent);
    the plan changes at once and the next renewal charges the new plan in full."""
    s = await run.start()
    await run.skip_to(s.current_period_start + timedelta(days=10))
    team = run.plan("team-monthly")
    run.card(CARD_DECLINED)
    try:
        await client_ops.send(run.client, run.sub_id, ChangePlan(plan=team))
        raise AssertionError("the declined proration was not refused")
    except RequestRefused as refused:
        assert refused.code == "payment_declined", refused
    run.card(CARD_OK)
    quote = lifecycle.preview_change(await run.state(), team,
                                     await run.env.get_current_time())
    assert quote.timing == "now" and quote.amount_due > 0, quote
    run.proxy.inject(Fault("POST", "/v1/payment_intents", "lose_response",
                           path_suffix="/confirm"))
    s = await client_ops.send(run.client, run.sub_id,
                              ChangePlan(plan=team, proration_date=quote.at))
    assert s.plan.id == "team-monthly" and s.rules == 4, s
    await run.renew()


async def v3_upgrade_at_period_end(run: Run) -> None:
    """A subscription still on rule version 3: its upgrade waits for the period end (no
    charge now), the renewal charges the new plan, and that renewal's continue-as-new moves
    it to version 4."""
    s = await _started_on_rules(run, 3)
    await run.skip_to(s.current_period_start + timedelta(days=10))
    s = await client_ops.send(run.client, run.sub_id, ChangePlan(plan=run.plan("team-monthly")))
    assert s.rules == 3 and s.plan.id == "pro-monthly" and s.pending_plan is not None, s
    s = await run.renew()
    assert s.plan.id == "team-monthly" and s.rules == lifecycle.CURRENT_RULES, s


async def renewals_past_bound(run: Run) -> None:
    """PATCH_RUNS_SPAN_PERIODS: renewals in one run, a cancel and a reactivate between two of
    them, until the run passes RUN_EVENTS_BOUND and continues as new; then two more."""
    await run.start()
    for n in range(16):
        if n == 3:
            await client_ops.send(run.client, run.sub_id, Cancel(mode="at_period_end"))
            await client_ops.send(run.client, run.sub_id, Reactivate())
        await run.renew()


# Recorded only into the small generation ``runs-span-periods`` (histories of the first code
# whose runs span renewals): ``--out tests/replay/histories/runs-span-periods renewals
# renewals_past_bound``. Not part of every generation.
EXTRA: dict[str, Callable[[Run], Awaitable[None]]] = {"renewals_past_bound": renewals_past_bound}


SCENARIOS: dict[str, Callable[[Run], Awaitable[None]]] = {
    f.__name__: f for f in (renewals, cancel_at_period_end, cancel_immediately_refund,
                            reactivate, postpone, dunning_recovers, dunning_cancels,
                            held_charge, held_refund, pause_now_resume_at, pause_resume_keep,
                            pause_resume_reset, change_plan, change_plan_reactivates,
                            retention_offer, unlock_on_subscribe, trial, scheduled_start,
                            unpaid_recovers_late, v1_unpaid_recovers_late, hard_decline,
                            action_required_recovers, v2_hard_decline_retried, upgrade_now,
                            v3_upgrade_at_period_end)
}


# Recording ----------------------------------------------------------------------------------


async def run_chain(client: Client, workflow_id: str) -> list[str]:
    """The workflow's run ids, first to latest, following continue-as-new."""
    first = client.get_workflow_handle(workflow_id)
    desc = await first.fetch_history_events(page_size=1).__anext__()
    run_ids = [desc.workflow_execution_started_event_attributes.first_execution_run_id]
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_ids[-1]) \
            .fetch_history()
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return run_ids
        run_ids.append(last.workflow_execution_continued_as_new_event_attributes
                       .new_execution_run_id)


async def record(name: str, localstripe_url: str, workdir: Path,
                 out: Path = CURRENT) -> list[Path]:
    url = f"sqlite:///{workdir / f'{name}.db'}"
    upgrade(url)
    proxy = StripeProxy(localstripe_url).__enter__()
    settings = Settings(database_url=url, stripe=stripe_settings(proxy.url),
                        temporal=TemporalSettings(task_queue=f"replay-{uuid.uuid4().hex[:8]}"))
    env = await time_skipping_env()
    try:
        async with build_worker(env.client, settings):
            run = Run(env, settings, name, proxy)
            await (SCENARIOS.get(name) or EXTRA[name])(run)
            written = []
            wid = contract.workflow_id(run.sub_id)
            for n, run_id in enumerate(await run_chain(env.client, wid), start=1):
                history = await env.client.get_workflow_handle(wid, run_id=run_id) \
                    .fetch_history()
                path = out / f"{name}-run{n}.json"
                path.write_text(history.to_json() + "\n")
                written.append(path)
            return written
    finally:
        await env.shutdown()
        proxy.__exit__(None, None, None)


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.replay.record")
    parser.add_argument("names", nargs="*", metavar="scenario",
                        help=f"scenarios to record (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=CURRENT,
                        help=f"directory to write (default: {CURRENT.name}, the newest "
                             "generation)")
    args = parser.parse_args(argv)
    if unknown := set(args.names) - set(SCENARIOS) - set(EXTRA):
        parser.error(f"unknown scenario: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    stripe = start_localstripe()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.names or list(SCENARIOS):
                for old in args.out.glob(f"{name}-run*.json"):
                    old.unlink()
                for path in await record(name, stripe.url, Path(tmp), args.out):
                    print(f"wrote {path}")
    finally:
        stripe.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
