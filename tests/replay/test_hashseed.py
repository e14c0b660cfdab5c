"""Every recorded history replays whatever the hash seed: the AST guard over domain/
(tests/domain/test_determinism.py) cannot see a set that reaches the rules through an
``Iterable`` parameter, or one iterated in the workflow shell, so the histories are replayed
again in fresh interpreters started with different ``PYTHONHASHSEED`` values, unsandboxed (how
the worker runs by default; the sandbox does not change a set's order, and test_replay.py
replays every history in it too, under the run's own random seed). A set-order dependence that
decides a command sequence shows up as a replay failure under one of the seeds; the last test
plants one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from temporalio import workflow

from domain import lifecycle
from domain.model import SubscriptionState
from tests.replay.test_replay import FILES, HISTORIES
from workflows import contract
from workflows.subscription import SubscriptionWorkflow
from workflows.types import SubscriptionInput

ROOT = Path(__file__).resolve().parents[2]
PLANTED_ORDER = ("recorded", "reversed")


def replay_all(seed: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.replay.replay_all", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONHASHSEED": str(seed)}, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_every_history_replays_under_the_seed(seed: int):
    done = replay_all(seed, "--runner", "unsandboxed")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1:] == [
        f"unsandboxed: replayed {len(FILES)} histories, 0 failed"]


@workflow.defn(name=contract.WORKFLOW_TYPE, sandboxed=False)
class SetOrderWorkflow(SubscriptionWorkflow):
    """The real workflow, except that each decision's commands run in an order picked by
    iterating a set of strings: the same code issues the recorded sequence under some hash seeds
    and the reversed one under others."""

    @workflow.run
    async def run(self, inp: SubscriptionInput) -> SubscriptionState:
        return await super().run(inp)

    async def _apply(self, decision: lifecycle.Decision) -> None:
        if next(iter(set(PLANTED_ORDER))) == "reversed":
            decision = decision.model_copy(update={"commands": tuple(reversed(decision.commands))})
        await super()._apply(decision)


def _seed_iterating_first(word: str) -> int:
    """A hash seed under which ``set(PLANTED_ORDER)`` yields ``word`` first."""
    probe = f"print(next(iter(set({PLANTED_ORDER!r}))))"
    for seed in range(64):
        out = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": str(seed)}, check=True)
        if out.stdout.strip() == word:
            return seed
    raise AssertionError(f"no seed below 64 iterates {word!r} first")


def test_a_set_order_dependent_workflow_fails_under_some_seed():
    history = HISTORIES / "held" / "renewals-run1.json"
    args = ("--runner", "unsandboxed", "--workflow", f"{__name__}:SetOrderWorkflow",
            str(history))
    passes = replay_all(_seed_iterating_first("recorded"), *args)
    assert passes.returncode == 0, passes.stderr
    fails = replay_all(_seed_iterating_first("reversed"), *args)
    assert fails.returncode == 1
    assert f"unsandboxed: {history}: NondeterminismError" in fails.stderr
    assert fails.stderr.splitlines()[-1] == "unsandboxed: replayed 1 histories, 1 failed"
