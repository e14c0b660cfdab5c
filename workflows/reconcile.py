"""ReconcilePaymentsWorkflow: one run of the payments reconciliation job (payments.reconcile),
started by the ``reconcile-payments`` Schedule (workflows.schedules) or by hand.

The job repairs idempotently, so a retried activity or an overlapping run is harmless; the
schedule still skips a run while the previous one is going. A run whose checks could not all
finish ends failed, so the Schedules page shows it; its findings were logged already.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.types import ReconcileRequest
    from payments.reconcile import ReconcileReport

WORKFLOW_TYPE = "ReconcilePayments"
# Listing Stripe's intents is paced by the shared rate limit: allow a long run.
RUN_TIMEOUT = timedelta(minutes=10)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=10), maximum_attempts=3)


@workflow.defn(name=WORKFLOW_TYPE)
class ReconcilePaymentsWorkflow:
    @workflow.run
    async def run(self, request: ReconcileRequest) -> ReconcileReport:
        report = await workflow.execute_activity(
            "reconcile_payments", request, result_type=ReconcileReport,
            start_to_close_timeout=RUN_TIMEOUT, retry_policy=RETRY)
        if report.errors:
            raise ApplicationError("reconciliation incomplete: " + "; ".join(report.errors),
                                   report.model_dump(mode="json"), non_retryable=True)
        return report
