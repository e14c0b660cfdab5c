"""The workflow checks that an activity's result belongs to the command it issued: a charge
result for another key, amount or period (a planted bug: an activity answering for the wrong
charge) fails the workflow task loudly with a clear error instead of being applied."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

from temporalio import activity
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.types import ChargeRequest, ChargeResult
from domain.lifecycle import NewSubscription
from domain.model import Actor
from tests.workflows.scenario import MONTHLY
from workers.main import build_activities
from workflows import client_ops, contract
from workflows.subscription import SubscriptionWorkflow


@activity.defn(name="charge")
def charge_for_another_period(request: ChargeRequest) -> ChargeResult:
    return ChargeResult(status="succeeded", idempotency_key=request.idempotency_key,
                        payment_intent_id="pi_planted", amount=request.amount,
                        period_key="20990101T000000Z")


async def test_a_result_for_another_charge_fails_the_task_with_a_clear_error(env, settings,
                                                                            engine):
    activities = [a for a in build_activities(settings, engine)
                  if a.__temporal_activity_definition.name != "charge"]
    sub_id = f"sub_{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=settings.temporal.task_queue,
                      workflows=[SubscriptionWorkflow],
                      activities=[*activities, charge_for_another_period],
                      workflow_runner=UnsandboxedWorkflowRunner(),
                      activity_executor=ThreadPoolExecutor(4)):
        await client_ops.start(env.client, NewSubscription(
            id=sub_id, customer_id="cus_x", plan=MONTHLY,
            requested_by=Actor(kind="operator", id="test")), settings.temporal.task_queue)
        handle = env.client.get_workflow_handle(contract.workflow_id(sub_id))
        failure = None
        for _ in range(100):
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_task_failed_event_attributes"):
                    failure = event.workflow_task_failed_event_attributes.failure.message
            if failure:
                break
            await asyncio.sleep(0.1)
    assert failure is not None, "the workflow task did not fail"
    assert "does not belong to the charge issued" in failure
    assert "20990101T000000Z" in failure
