"""Exactly-once renewal charging across a worker crash, on the real workflow, real payment
service and localstripe.

The crash is staged at the worst moment: localstripe has confirmed the renewal PaymentIntent
(money moved), but the worker dies before committing the outcome to ``charge_attempt`` and
before reporting the activity to Temporal. A new worker must pick up the retry and reconcile
with the stored intent instead of charging again.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import update
from temporalio import activity
from temporalio.worker import Worker

from activities.payments import PaymentActivities
from activities.types import ChargeRequest, ChargeResult
from domain.model import Status
from domain.periods import period_key
from payments.models import ChargeAttempt
from store.engine import session_scope
from workers.main import build_activities, build_worker
from workflows.subscription import SubscriptionWorkflow

pytestmark = pytest.mark.temporal

SECOND = timedelta(seconds=1)


class DiesAfterCharging:
    """The real charge activity, in a worker process that dies right after Stripe confirmed
    the first renewal: the committed outcome is rolled back to ``pending`` (the commit never
    happened) and the attempt never reports back until the test lets it fail."""

    def __init__(self, real, engine) -> None:
        self.real, self.engine = real, engine
        self.charged, self.released = threading.Event(), threading.Event()
        self.lost: ChargeResult | None = None

    @activity.defn(name="charge")
    def charge(self, request: ChargeRequest) -> ChargeResult:
        result = self.real(request)
        if request.purpose != "renewal" or self.charged.is_set():
            return result
        with session_scope(self.engine) as session:
            session.exec(update(ChargeAttempt)
                         .where(ChargeAttempt.idempotency_key == request.idempotency_key)
                         .values(status="pending"))
        self.lost = result
        self.charged.set()
        self.released.wait(30)
        raise RuntimeError("worker died before reporting the charge")


def _doomed_worker(scenario, dying: DiesAfterCharging) -> Worker:
    activities = [dying.charge if a.__name__ == "charge" else a
                  for a in build_activities(scenario.settings, scenario.engine)]
    return Worker(scenario.client, task_queue=scenario.settings.temporal.task_queue,
                  workflows=[SubscriptionWorkflow], activities=activities,
                  activity_executor=ThreadPoolExecutor(max_workers=4),
                  # No sticky queue: the time-skipping server does not move a task off a dead
                  # worker's sticky queue (not within 40 s here; a real server does in 5 s).
                  max_cached_workflows=0)


async def test_worker_killed_between_the_charge_and_its_completion(bare_scenario):
    """Stripe charged the renewal, the worker died before recording or reporting it; a new
    worker retries the activity, reconciles with the stored PaymentIntent and the subscription
    is active with exactly one successful charge for the period at localstripe."""
    scenario = bare_scenario
    real = PaymentActivities(scenario.payments).charge
    dying = DiesAfterCharging(real, scenario.engine)
    doomed = _doomed_worker(scenario, dying)
    running = asyncio.create_task(doomed.run())
    first = await scenario.start()
    end = first.current_period_end

    jump = asyncio.create_task(scenario.sleep_until(end + SECOND))
    assert await asyncio.to_thread(dying.charged.wait, 20), "the renewal was never charged"
    assert dying.lost is not None and dying.lost.status == "succeeded"
    stopping = asyncio.create_task(doomed.shutdown())
    await asyncio.sleep(0.2)  # polling stops first; then the attempt dies unreported
    dying.released.set()
    await stopping
    await running

    renewal = scenario.charges()[-1]
    assert (renewal.purpose, renewal.status) == ("renewal", "pending")  # the outcome was lost
    assert renewal.payment_intent_id == dying.lost.payment_intent_id
    at_stripe = [pi for pi in scenario.stripe_intents()
                 if pi["metadata"]["period_key"] == renewal.period_key]
    assert [(pi["id"], pi["status"]) for pi in at_stripe] == [(renewal.payment_intent_id,
                                                               "succeeded")]

    async with build_worker(scenario.client, scenario.settings, scenario.engine):
        await jump
        state = await scenario.until(lambda s: s.period_index == 1
                                     and s.awaiting_charge is None, timeout=40)
    assert state.status == Status.ACTIVE and state.current_period_start == end
    assert state.current_period_payment_intent == renewal.payment_intent_id
    charges = scenario.charges()
    assert [(c.purpose, c.status) for c in charges] == [("first_period", "succeeded"),
                                                       ("renewal", "succeeded")]
    intents = scenario.stripe_intents()
    assert sorted((pi["metadata"]["period_key"], pi["status"]) for pi in intents) == [
        (first.period_key, "succeeded"), (renewal.period_key, "succeeded")]
    assert [e.type for e in scenario.events()].count("invoice.paid") == 2


async def test_a_charge_already_made_by_a_lost_attempt_is_not_repeated(scenario):
    """The renewal's charge activity ran once before the workflow got there (its response
    was lost); the workflow's own attempt finds it and does not charge again."""
    first = await scenario.start()
    end = first.current_period_end
    renewal_period = period_key(end)
    renewal_key = f"{scenario.sub_id}:{renewal_period}:1"  # what the workflow will use
    lost = PaymentActivities(scenario.payments).charge(ChargeRequest(
        idempotency_key=renewal_key, subscription_id=scenario.sub_id,
        customer_id=first.customer_id, amount=first.plan.amount, currency=first.plan.currency,
        description="lost attempt", purpose="renewal",
        period_key=renewal_period))
    assert lost.status == "succeeded"

    await scenario.sleep_until(end + SECOND)
    state = await scenario.until(lambda s: s.period_index == 1 and s.awaiting_charge is None)
    assert state.status == Status.ACTIVE
    assert state.current_period_payment_intent == lost.payment_intent_id
    assert [c.idempotency_key for c in scenario.charges("succeeded")][-1] == renewal_key
    assert len(scenario.charges()) == 2
    assert [pi["status"] for pi in scenario.stripe_intents()] == ["succeeded", "succeeded"]
