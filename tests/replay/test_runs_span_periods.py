"""PATCH_RUNS_SPAN_PERIODS: histories recorded when a run continued as new after every renewal
replay unchanged with the code whose runs span renewals, and only because of the patch."""

from __future__ import annotations

import pytest
from temporalio import workflow
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

from domain.model import SubscriptionState
from workflows import contract
from workflows.connection import data_converter
from workflows.subscription import RUN_EVENTS_BOUND, SubscriptionWorkflow
from workflows.types import SubscriptionInput
from tests.replay.test_replay import GENERATIONS, HISTORIES, load

# Recorded before the patch: every generation that existed then.
BEFORE = sorted(GENERATIONS & {"per-write", "batched", "held", "rules-v2", "rules-v3"})


@workflow.defn(name=contract.WORKFLOW_TYPE, sandboxed=False)
class SpansPeriodsUngated(SubscriptionWorkflow):
    """The new rule without its patch: every history continues as new only when it is long
    or a rule upgrade is due."""

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        return await super().run(inp)

    @staticmethod
    def _runs_span_periods() -> bool:
        return True


async def _replay(workflow_class, generation: str):
    replayer = Replayer(workflows=[workflow_class], data_converter=data_converter(),
                        workflow_runner=UnsandboxedWorkflowRunner())
    history = load(HISTORIES / generation / "renewals-run2.json")
    # A run started from carried state that renewed once and continued as new.
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    return await replayer.replay_workflow(history, raise_on_replay_failure=False)


@pytest.mark.parametrize("generation", BEFORE)
async def test_a_run_that_continued_as_new_after_one_renewal_replays(generation: str):
    assert (await _replay(SubscriptionWorkflow, generation)).replay_failure is None


@pytest.mark.parametrize("generation", BEFORE)
async def test_without_the_patch_the_old_histories_fail_replay(generation: str):
    failure = (await _replay(SpansPeriodsUngated, generation)).replay_failure
    assert failure is not None and "Nondeterminism" in str(failure), failure


def test_the_new_generation_spans_renewals_and_continues_as_new_past_the_bound():
    """runs-span-periods (recorded with the patch): one run holds both renewals; the long
    scenario's first run renewed many times and continued as new once past the bound."""
    def renewals(path):
        return sum(e.HasField("activity_task_scheduled_event_attributes")
                   and e.activity_task_scheduled_event_attributes.activity_type.name == "charge"
                   for e in load(path).events) - ("run1" in path.stem)  # less the first charge
    span = HISTORIES / "runs-span-periods"
    assert renewals(span / "renewals-run1.json") == 2
    first = load(span / "renewals_past_bound-run1.json")
    assert first.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert renewals(span / "renewals_past_bound-run1.json") >= 10
    assert RUN_EVENTS_BOUND <= len(first.events) < RUN_EVENTS_BOUND + 30
