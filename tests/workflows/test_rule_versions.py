"""Rule versions through the real worker: a new subscription starts on the current rules; one
carried from code that knew no versions (version 1), or from code whose newest rules were
version 2 or 3, keeps them until its next renewal hands the state on through continue-as-new,
where it moves to the current rules (a safe point), recorded behind the newest patch."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import lifecycle
from domain.commands import PaymentOutcome
from domain.lifecycle import NewSubscription
from domain.model import Actor
from workflows import client_ops, contract
from workflows.subscription import PATCH_RULES_V4, SubscriptionWorkflow
from workflows.types import SubscriptionInput
from tests.workflows.scenario import MONTHLY, Scenario

MINUTE = timedelta(minutes=1)


async def test_new_subscriptions_start_on_the_current_rules(env, settings, engine, payments,
                                                            worker):
    scenario = Scenario(env, settings, engine, payments)
    state = await scenario.start()
    assert state.rules == lifecycle.CURRENT_RULES


@pytest.mark.parametrize("rules", [1, 2, 3])
async def test_an_older_subscription_moves_to_the_current_rules_at_its_renewal(
        env, settings, engine, payments, worker, rules):
    scenario = Scenario(env, settings, engine, payments)
    customer = scenario.customer()
    scenario.sub_id = f"sub_rules_v{rules}"
    now = await env.get_current_time()
    # What a run of older code hands on: an active, paid state without a rule version.
    new = NewSubscription(id=scenario.sub_id, customer_id=customer, plan=MONTHLY,
                          policy=client_ops.policy_from_settings(settings),
                          requested_by=Actor(kind="customer", id=customer))
    created = lifecycle.create(new, now, rules=rules).state
    paid = lifecycle.apply_outcome(created, PaymentOutcome(
        idempotency_key=created.awaiting_charge, status="succeeded", amount=MONTHLY.amount,
        payment_intent_id="pi_earlier_run"), now).state
    carried = paid.model_dump(mode="json")
    if rules == 1:
        del carried["rules"]  # what code from before rule versions wrote
    await env.client.start_workflow(
        SubscriptionWorkflow.run, SubscriptionInput.model_validate({"state": carried}),
        id=contract.workflow_id(scenario.sub_id), task_queue=settings.temporal.task_queue)
    before = await scenario.until(lambda s: s.status.value == "active")
    assert before.rules == rules

    await scenario.sleep_until(before.current_period_end + MINUTE)
    renewed = await scenario.until(lambda s: s.period_index == 1 and s.awaiting_charge is None)
    assert renewed.rules == lifecycle.CURRENT_RULES
    handle = env.client.get_workflow_handle(contract.workflow_id(scenario.sub_id))
    first_run = [e async for e in env.client.get_workflow_handle(
        handle.id, run_id=before_run_id(await handle.fetch_history())).fetch_history_events()]
    markers = [e.marker_recorded_event_attributes for e in first_run
               if e.HasField("marker_recorded_event_attributes")]
    assert any(PATCH_RULES_V4.encode() in payload.data for m in markers
               for value in m.details.values() for payload in value.payloads)


def before_run_id(latest_history) -> str:
    """The first run of the chain (the one started with the version 1 state)."""
    started = latest_history.events[0].workflow_execution_started_event_attributes
    return started.first_execution_run_id
