"""Requests that arrive while the workflow is busy (a renewal charge in flight) queue up in the
one inbox and are applied strictly in arrival order: a request is judged against the state
that the requests ahead of it leave, not against the state at the moment it arrived."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateStage
from temporalio.worker import Worker

from activities.payments import PaymentActivities
from activities.types import ChargeRequest, ChargeResult
from domain.errors import RequestRefused
from domain.lifecycle import ENDED_MESSAGE
from domain.model import Status
from domain.requests import Cancel, Reactivate
from workers.main import build_activities
from workflows import client_ops, contract
from workflows.subscription import SubscriptionWorkflow

pytestmark = pytest.mark.temporal


class SlowRenewals:
    """The real charge activity behind a gate: a renewal waits until the test opens it, like
    a slow Stripe call, so requests pile up while the charge is in flight."""

    def __init__(self, real) -> None:
        self.real = real
        self.entered, self.gate = threading.Event(), threading.Event()

    @activity.defn(name="charge")
    def charge(self, request: ChargeRequest) -> ChargeResult:
        if request.purpose == "renewal":
            self.entered.set()
            self.gate.wait(30)
        return self.real(request)


def _worker(scenario, slow: SlowRenewals) -> Worker:
    activities = [slow.charge if a.__name__ == "charge" else a
                  for a in build_activities(scenario.settings, scenario.engine)]
    return Worker(scenario.client, task_queue=scenario.settings.temporal.task_queue,
                  workflows=[SubscriptionWorkflow], activities=activities,
                  activity_executor=ThreadPoolExecutor(max_workers=4))


@pytest.mark.parametrize("first_by", ["signal", "update"])
async def test_reactivate_queued_behind_a_cancel_is_judged_after_it(bare_scenario, first_by):
    scenario = bare_scenario
    slow = SlowRenewals(PaymentActivities(scenario.payments).charge)
    async with _worker(scenario, slow):
        first = await scenario.start()
        end = first.current_period_end
        jump = asyncio.create_task(scenario.sleep_until(end + timedelta(seconds=1)))
        assert await asyncio.to_thread(slow.entered.wait, 20)

        cancel = Cancel(mode="at_period_end")
        if first_by == "signal":
            await scenario.signal(cancel)
        else:  # accepted (queued) before the reactivation is sent
            await client_ops.handle(scenario.client, scenario.sub_id).start_update(
                "cancel", cancel, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        reactivate = asyncio.create_task(scenario.send(Reactivate()))
        await asyncio.sleep(0.3)
        slow.gate.set()
        back = await reactivate
        await jump

        assert back.status == Status.ACTIVE and back.cancel_at is None
        state = await scenario.until(lambda s: s.period_index == 1 and s.awaiting_charge is None)
        assert state.status == Status.ACTIVE and state.cancel_at is None
        assert await scenario.rejected() == []
        types = [e.type for e in scenario.events()]
        assert types[-2:] == ["customer.subscription.updated"] * 2  # cancel, then reactivate


async def test_a_request_queued_behind_the_end_is_refused_in_turn(bare_scenario):
    """Accepted while judged later, a request that the requests ahead make impossible is
    refused when its turn comes, with the rule's reason (D4 here), and changes nothing."""
    scenario = bare_scenario
    slow = SlowRenewals(PaymentActivities(scenario.payments).charge)
    async with _worker(scenario, slow):
        first = await scenario.start()
        jump = asyncio.create_task(scenario.sleep_until(first.current_period_end
                                                        + timedelta(seconds=1)))
        assert await asyncio.to_thread(slow.entered.wait, 20)
        await scenario.signal(Cancel(mode="immediately"))
        reactivate = asyncio.create_task(scenario.send(Reactivate()))
        await asyncio.sleep(0.3)
        slow.gate.set()
        with pytest.raises(RequestRefused) as refused:
            await reactivate
        await jump
        assert refused.value.code == "subscription_ended"
        assert refused.value.message == ENDED_MESSAGE
        final = await scenario.finished()
        assert final.status == Status.CANCELED and final.cancellation.mode == "immediately"
        assert [e.type for e in scenario.events()][-1] == "customer.subscription.deleted"
