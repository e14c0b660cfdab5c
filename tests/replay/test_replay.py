"""Replay safety: the recorded histories (tests/replay/histories, made by tests/replay/record.py)
replay against the current SubscriptionWorkflow without a nondeterminism error. Each
generation (a directory: ``per-write`` recorded before PATCH_BATCHED_EFFECTS, ``batched``
after, ``held`` with holds, ``rules-v2`` with rule versions, ``rules-v3`` with decline-aware
dunning; the small ``runs-span-periods``: runs that span renewals; ``rules-v4`` with prorated
mid-period upgrades, runs spanning renewals; ``kept-timer``: the main loop's timer outlives
a request that does not move the next wake-up) holds the scenarios of its time;
old generations stay, because subscriptions started then are still running somewhere.

A history stands for a subscription running in production when a new worker version is
deployed: if the new code would issue different commands for the same events, that
subscription's workflow task fails forever. The scenarios cover renewals with continue-as-new
(first run and runs started from carried state), cancel at period end, immediate cancel with a
prorated refund, reactivate, postpone into an extension period, dunning that recovers after a
new card and dunning that ends in the automatic cancel (D1-D9), held charges and refunds, and
from ``rules-v2`` on pause/resume (D12), plan changes (D11), the retention offer (D14), the
unlock on subscribe (D16), a trial, a scheduled start (D10) and the unpaid policy with a late
recovery, and from ``rules-v3`` on a hard decline, a 3-D Secure decline and a version-2
subscription's hard decline retried on the schedule, and from ``rules-v4`` on an upgrade
charged at once (declined first, then paid although the answer to its confirm was lost) and a
version-3 subscription's upgrade at the period end; test_coverage.py checks that together
they send every request and reach every status.

Every history replays twice: unsandboxed, as the worker runs workflows by default
(settings.workflow_sandbox), and in the SDK's sandbox, which also refuses the I/O, clocks and
randomness that pass unsandboxed. The tests
below it show the check has teeth: the same workflow with two commands swapped, or without
holds, or on the old late-recovery rule, or with decline-aware dunning or prorated upgrades
reverted or applied to the version before, fails on the same histories.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from domain import lifecycle
from domain.model import SubscriptionState
from workflows import contract
from workflows.connection import data_converter
from workflows.subscription import SubscriptionWorkflow
from workflows.types import SubscriptionInput

HISTORIES = Path(__file__).resolve().parent / "histories"
FILES = sorted(HISTORIES.glob("*/*.json"))
GENERATIONS = {"per-write", "batched", "held", "rules-v2", "rules-v3", "runs-span-periods",
               "rules-v4", "kept-timer"}
SCENARIOS = {"renewals", "cancel_at_period_end", "cancel_immediately_refund", "reactivate",
             "postpone", "dunning_recovers", "dunning_cancels"}
HELD = {"held_charge", "held_refund"}  # recorded from the ``held`` generation on
RULES_V2 = {"pause_now_resume_at", "pause_resume_keep", "pause_resume_reset", "change_plan",
            "change_plan_reactivates", "retention_offer", "unlock_on_subscribe", "trial",
            "scheduled_start", "unpaid_recovers_late",
            "v1_unpaid_recovers_late"}  # from ``rules-v2`` on
RULES_V3 = {"hard_decline", "action_required_recovers", "v2_hard_decline_retried"}
RULES_V4 = {"upgrade_now", "v3_upgrade_at_period_end"}
SCENARIOS_OF = {"per-write": SCENARIOS, "batched": SCENARIOS, "held": SCENARIOS | HELD,
                "rules-v2": SCENARIOS | HELD | RULES_V2,
                "rules-v3": SCENARIOS | HELD | RULES_V2 | RULES_V3,
                "runs-span-periods": {"renewals", "renewals_past_bound"},  # record.EXTRA
                "rules-v4": SCENARIOS | HELD | RULES_V2 | RULES_V3 | RULES_V4,
                "kept-timer": SCENARIOS | HELD | RULES_V2 | RULES_V3 | RULES_V4}
RUNNERS = {"unsandboxed": UnsandboxedWorkflowRunner(), "sandboxed": SandboxedWorkflowRunner()}


def load(path: Path) -> WorkflowHistory:
    text = path.read_text()
    workflow_id = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"] \
        .get("workflowId") or f"replay-{path.stem}"
    return WorkflowHistory.from_json(workflow_id, text)


@pytest.mark.parametrize("generation", sorted(GENERATIONS))
def test_every_scenario_has_recorded_histories(generation: str):
    files = [p for p in FILES if p.parent.name == generation]
    assert {p.stem.rsplit("-run", 1)[0] for p in files} == SCENARIOS_OF[generation]
    # continue-as-new is covered: some scenario has runs that start from carried state (since
    # PATCH_RUNS_SPAN_PERIODS plain renewals stay in one run; rule upgrades still hand on)
    assert any(p.stem.endswith("-run2") for p in files)
    assert {p.parent.name for p in FILES} == GENERATIONS


def test_the_recorder_writes_the_newest_generation_with_every_scenario():
    from tests.replay.record import CURRENT, EXTRA, SCENARIOS as RECORDED

    assert CURRENT.name in GENERATIONS
    assert set(RECORDED) == SCENARIOS_OF[CURRENT.name]
    assert all(SCENARIOS_OF[g] - set(EXTRA) <= SCENARIOS_OF[CURRENT.name] for g in GENERATIONS)


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
async def test_history_replays_against_current_workflow(path: Path, runner: str):
    replayer = Replayer(workflows=[SubscriptionWorkflow], data_converter=data_converter(),
                        workflow_runner=RUNNERS[runner])
    result = await replayer.replay_workflow(load(path))
    assert result.replay_failure is None


@workflow.defn(name=contract.WORKFLOW_TYPE, sandboxed=False)
class SwappedFirstCommands(SubscriptionWorkflow):
    """The real workflow, except that the first decision's commands run in reverse order (the
    charge before the "created" event): an innocent-looking refactor."""

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        decision = lifecycle.create(inp.new, workflow.now(), self._newest_rules())
        await self._apply(decision.model_copy(
            update={"commands": tuple(reversed(decision.commands))}))
        return self.state


@pytest.mark.parametrize(("generation", "message"), [
    ("per-write", "Activity type of scheduled event 'record_event' does not match activity "
                  "type of activity command 'charge'"),
    ("batched", "Missing associated machine for LocalActivity"),
    ("held", "Missing associated machine for LocalActivity"),
    ("rules-v2", "Missing associated machine for LocalActivity"),
    ("rules-v3", "Missing associated machine for LocalActivity"),
    ("rules-v4", "Missing associated machine for LocalActivity"),
    ("kept-timer", "Missing associated machine for LocalActivity"),
])
async def test_a_reordered_workflow_fails_replay(generation: str, message: str):
    replayer = Replayer(workflows=[SwappedFirstCommands], data_converter=data_converter())
    with pytest.raises(workflow.NondeterminismError) as err:
        await replayer.replay_workflow(load(HISTORIES / generation / "renewals-run1.json"))
    assert message in str(err.value)


@pytest.mark.temporal
async def test_the_recorder_still_records_replayable_histories(tmp_path, localstripe_url):
    """tests/replay/record.py must keep working for the day histories are added: record one
    scenario (into a temporary directory) and replay what it wrote."""
    from tests.replay.record import record

    written = await record("renewals", localstripe_url, tmp_path, out=tmp_path)
    assert [p.name for p in written] == ["renewals-run1.json"]  # both renewals in one run
    replayer = Replayer(workflows=[SubscriptionWorkflow], data_converter=data_converter())
    for path in written:
        assert (await replayer.replay_workflow(load(path))).replay_failure is None


@workflow.defn(name=contract.WORKFLOW_TYPE, sandboxed=False)
class FailsTheTaskOnAFailedCall(SubscriptionWorkflow):
    """The workflow before holds: a non-retryable activity error failed the workflow task."""

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        return await super().run(inp)

    def _failed(self, name, key, err, charge=None):
        raise RuntimeError(f"activity {name} failed permanently: {err.cause}") from err


@pytest.mark.parametrize("generation", ["held", "rules-v2", "rules-v3", "rules-v4",
                                        "kept-timer"])
@pytest.mark.parametrize("scenario", ["held_charge-run1", "held_refund-run1"])
async def test_reverting_the_hold_fails_replay_of_held_histories(scenario: str, generation: str):
    replayer = Replayer(workflows=[FailsTheTaskOnAFailedCall],
                        data_converter=data_converter())
    result = await replayer.replay_workflow(load(HISTORIES / generation / f"{scenario}.json"),
                                            raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "failed permanently" in str(result.replay_failure)


async def _replay_on_one_rule(monkeypatch, skips: bool, scenario: str,
                              rule: str = "skips_missed_periods",
                              generation: str = "rules-v2") -> list[str]:
    """Replay a scenario with one rule (a lifecycle predicate) forced for every subscription;
    the failures, one per run that did not replay."""
    monkeypatch.setattr(lifecycle, rule, lambda state: skips)
    replayer = Replayer(workflows=[SubscriptionWorkflow], data_converter=data_converter(),
                        workflow_runner=UnsandboxedWorkflowRunner())
    return [str(result.replay_failure) for path in
            sorted((HISTORIES / generation).glob(f"{scenario}-run*.json"))
            if (result := await replayer.replay_workflow(
                load(path), raise_on_replay_failure=False)).replay_failure is not None]


async def test_applying_the_late_recovery_rule_to_version_1_fails_replay(monkeypatch):
    """The other direction: the rule applied to every subscription, as 7eb1f46 first did
    (without a version), fails a history of a version-1 subscription recovering late
    (rules-v2/v1_unpaid_recovers_late: its recovery charged each missed period; the run that
    recovers is the second, the first continued as new after the declined renewal)."""
    failures = await _replay_on_one_rule(monkeypatch, True, "v1_unpaid_recovers_late")
    assert failures, "every run replayed on the wrong rule"
    assert any("Nondeterminism" in f or "does not belong" in f for f in failures), failures


async def test_reverting_the_late_recovery_rule_fails_replay(monkeypatch):
    """Rule version 2 (a late recovery from dunning skips the periods that ended without
    access) is in rules-v2/unpaid_recovers_late: on the old rule the recovery does not open
    the period containing now in the same decision, so the commands differ from the history."""
    failures = await _replay_on_one_rule(monkeypatch, False, "unpaid_recovers_late")
    assert failures and "Nondeterminism error" in failures[0], failures


async def test_reverting_decline_aware_dunning_fails_replay(monkeypatch):
    """Rule version 3 is in rules-v3/hard_decline: on the old rule the hard decline on the
    retry schedules another retry, which charges where the history ended the subscription."""
    failures = await _replay_on_one_rule(monkeypatch, False, "hard_decline", "decline_aware",
                                         "rules-v3")
    assert failures and "Nondeterminism" in failures[0], failures


async def test_applying_decline_aware_dunning_to_version_2_fails_replay(monkeypatch):
    """The other direction: version 3 applied to a version-2 subscription (rules-v3/
    v2_hard_decline_retried, whose hard decline was retried on the schedule) fails, the
    subscription ending where the history charged its next retry: the rule
    must stay behind the version, and the version behind PATCH_RULES_V3."""
    failures = await _replay_on_one_rule(monkeypatch, True, "v2_hard_decline_retried",
                                         "decline_aware", "rules-v3")
    assert failures and "Nondeterminism" in failures[0], failures


async def test_reverting_prorated_upgrades_fails_replay(monkeypatch):
    """Rule version 4 is in rules-v4/upgrade_now: on the old rule the upgrade waits for the
    period end, so no proration charge is scheduled where the history has one."""
    failures = await _replay_on_one_rule(monkeypatch, False, "upgrade_now",
                                         "prorates_upgrades", "rules-v4")
    assert failures and "Nondeterminism" in failures[0], failures


async def test_applying_prorated_upgrades_to_version_3_fails_replay(monkeypatch):
    """The other direction: version 4 applied to a version-3 subscription (rules-v4/
    v3_upgrade_at_period_end, whose upgrade waited for the period end) charges a proration
    where the history charged nothing: the rule must stay behind the version, and the version
    behind PATCH_RULES_V4."""
    failures = await _replay_on_one_rule(monkeypatch, True, "v3_upgrade_at_period_end",
                                         "prorates_upgrades", "rules-v4")
    assert failures and "Nondeterminism" in failures[0], failures


@workflow.defn(name=contract.WORKFLOW_TYPE, sandboxed=False)
class TimerKeptWithoutPatch(SubscriptionWorkflow):
    """The kept timer as a deploy without ``workflow.patched`` would run it."""

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        return await super().run(inp)

    def _keeps_timer(self) -> bool:
        return True


@workflow.defn(name=contract.WORKFLOW_TYPE, sandboxed=False)
class TimerNeverKept(SubscriptionWorkflow):
    """The kept timer reverted: a new timer each time the loop waits."""

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        return await super().run(inp)

    def _keeps_timer(self) -> bool:
        return False


@pytest.mark.parametrize(("workflow_class", "generation"), [
    (TimerKeptWithoutPatch, "rules-v4"), (TimerNeverKept, "kept-timer")])
@pytest.mark.parametrize("scenario", ["reactivate-run1", "cancel_at_period_end-run1"])
async def test_the_kept_timer_needs_its_patch(workflow_class, generation: str, scenario: str):
    """A reactivate (or a cancel at the period end) leaves the wake-up where it was: histories
    before PATCH_KEPT_TIMER cancel the timer and start it again there, histories after it do
    not, so either loop replayed on the other's history issues other commands."""
    replayer = Replayer(workflows=[workflow_class], data_converter=data_converter())
    result = await replayer.replay_workflow(load(HISTORIES / generation / f"{scenario}.json"),
                                            raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert "Nondeterminism" in str(result.replay_failure), result.replay_failure
