"""The payments reconciliation job as an activity, for its scheduled workflow
(workflows.reconcile). Each finding is logged by the job itself (one JSON line each); here
they are also counted for the worker's Prometheus endpoint."""

from __future__ import annotations

from temporalio import activity
from temporalio.common import MetricCounter

from activities.types import ReconcileRequest
from payments.reconcile import ReconcileReport, Reconciler


class ReconcileActivities:
    def __init__(self, reconciler: Reconciler) -> None:
        self.reconciler = reconciler
        self._counters: tuple[MetricCounter, MetricCounter] | None = None

    @activity.defn(name="reconcile_payments")
    def reconcile_payments(self, request: ReconcileRequest) -> ReconcileReport:
        report = self.reconciler.run(request.dry_run)
        findings, errors = self._metrics()
        for finding in report.findings:
            findings.add(1, {"kind": finding.kind, "action": finding.action})
        if report.errors:
            errors.add(len(report.errors))
        return report

    def _metrics(self) -> tuple[MetricCounter, MetricCounter]:
        if self._counters is None:
            meter = activity.metric_meter()
            self._counters = (
                meter.create_counter("payments_reconcile_findings",
                                     "Findings of the payments reconciliation job."),
                meter.create_counter("payments_reconcile_errors",
                                     "Reconciliation checks that could not finish."))
        return self._counters
