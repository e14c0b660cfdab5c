"""The worker runs workflow code outside the SDK's sandbox by default (settings.workflow_sandbox,
README "Benchmarks"), so the workflow must stay correct inside it too: with the sandbox on, a
subscription is created, renews through continue-as-new, is cancelled, postponed, reactivated
and cancelled immediately, exactly as it does without."""

from __future__ import annotations

from datetime import timedelta

from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from domain.model import Actor, Status
from domain.requests import Cancel, Postpone, Reactivate
from tests.workflows.scenario import Scenario
from workers.main import build_worker

SECOND = timedelta(seconds=1)
OPERATOR = Actor(kind="operator", id="ops")


async def test_the_setting_chooses_the_workflow_runner(env, settings, engine):
    plain = build_worker(env.client, settings, engine, task_queue="runner-default")
    assert isinstance(plain.config()["workflow_runner"], UnsandboxedWorkflowRunner)
    sandboxed = settings.model_copy(update={"workflow_sandbox": True})
    boxed = build_worker(env.client, sandboxed, engine, task_queue="runner-sandboxed")
    assert isinstance(boxed.config()["workflow_runner"], SandboxedWorkflowRunner)


async def test_the_setting_sizes_the_workflow_cache(env, settings, engine):
    default = build_worker(env.client, settings, engine, task_queue="cache-default")
    assert default.config()["max_cached_workflows"] == 1000  # the SDK's own default
    sized = settings.model_copy(update={"temporal": settings.temporal.model_copy(
        update={"max_cached_workflows": 10_000})})
    big = build_worker(env.client, sized, engine, task_queue="cache-sized")
    assert big.config()["max_cached_workflows"] == 10_000


async def test_a_subscription_lives_its_life_inside_the_sandbox(env, settings, engine, payments):
    sandboxed = settings.model_copy(update={"workflow_sandbox": True})
    scenario = Scenario(env, sandboxed, engine, payments)
    async with build_worker(env.client, sandboxed, engine):
        first = await scenario.start()
        await scenario.sleep_until(first.current_period_end + SECOND)
        renewed = await scenario.until(lambda s: s.period_index == first.period_index + 1)
        assert renewed.current_period_start == first.current_period_end

        cancelled = await scenario.send(Cancel(mode="at_period_end", requested_by=OPERATOR))
        assert cancelled.status == Status.NON_RENEWING
        later = renewed.current_period_end + timedelta(days=10)
        postponed = await scenario.send(Postpone(cancel_at=later, requested_by=OPERATOR))
        assert postponed.cancel_at == later
        back = await scenario.send(Reactivate(requested_by=OPERATOR))
        assert back.status == Status.ACTIVE and back.cancel_at is None
        ended = await scenario.send(Cancel(mode="immediately", requested_by=OPERATOR))
        assert ended.status == Status.CANCELED
        await scenario.finished()
    assert [c.purpose for c in scenario.charges("succeeded")] == ["first_period", "renewal"]
    assert [e.type for e in scenario.events()][-1] == "customer.subscription.deleted"
