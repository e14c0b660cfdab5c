"""PruneEventsWorkflow: one run of the event retention job (activities.retention), started by
the ``prune-events`` Schedule (workflows.schedules) or by hand. Deleting is idempotent, so a
retried activity or a second run only finds less to delete."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from eventlog.retention import PruneReport, PruneRequest

WORKFLOW_TYPE = "PruneEvents"
RUN_TIMEOUT = timedelta(minutes=30)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=3)


@workflow.defn(name=WORKFLOW_TYPE)
class PruneEventsWorkflow:
    @workflow.run
    async def run(self, request: PruneRequest) -> PruneReport:
        return await workflow.execute_activity(
            "prune_events", request, result_type=PruneReport,
            start_to_close_timeout=RUN_TIMEOUT, heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY)
