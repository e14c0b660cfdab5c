"""The worker process: the subscription, credit purchase, reconciliation and event retention
workflows plus every activity, wired to real services; at start-up it makes sure their
Schedules exist."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.credits import CreditActivities
from activities.effects import EffectActivities
from activities.events import EventActivities
from activities.payments import PaymentActivities
from activities.purchases import PurchaseActivities
from activities.reconcile import ReconcileActivities
from activities.retention import RetentionActivities
from config.settings import Settings, TemporalSettings, get_settings
from ledger.service import Ledger
from notifications.dispatcher import Dispatcher
from payments.gateway import StripeGateway
from payments.reconcile import Reconciler
from payments.service import PaymentService
from store.engine import get_engine
from store.migrate import upgrade
from workers.client import worker_runtime
from workflows.connection import connect
from workflows.credit_purchase import CreditPurchaseWorkflow
from workflows.logs import configure as configure_logging
from workflows.prune import PruneEventsWorkflow
from workflows.reconcile import ReconcilePaymentsWorkflow
from workflows.schedules import ensure_prune_schedule, ensure_reconcile_schedule
from workflows.subscription import SubscriptionWorkflow
from workflows.telemetry import start as start_tracing

log = logging.getLogger("workers")
WORKFLOWS = [SubscriptionWorkflow, CreditPurchaseWorkflow, ReconcilePaymentsWorkflow,
             PruneEventsWorkflow]


def build_activities(settings: Settings, engine: Engine) -> list:
    service = PaymentService(engine, StripeGateway(settings.stripe, engine=engine))
    ledger = Ledger(engine, settings.credits)
    payments = PaymentActivities(service)
    credits = CreditActivities(ledger)
    events = EventActivities(engine)
    effects = EffectActivities(credits, events)
    purchases = PurchaseActivities(ledger)
    reconcile = ReconcileActivities(Reconciler(service, ledger, settings.reconcile))
    retention = RetentionActivities(engine, settings.events)
    return [
        payments.charge,  # also the charge of a credit purchase
        purchases.purchase_credits,
        reconcile.reconcile_payments,
        retention.prune_events,
        payments.refund,
        payments.collect_pending_charges,
        payments.discard_pending_charges,
        payments.close_open_charges,
        effects.apply_effects,  # every local write of current workflow code, batched
        # One activity per write: what runs recorded before the batching still schedule.
        credits.grant_period_credits,
        credits.forfeit_period_credits,
        credits.lock_purchased_credits,
        credits.unlock_purchased_credits,
        events.record_event,
    ]


def build_worker(client: Client, settings: Settings, engine: Engine | None = None,
                 task_queue: str | None = None, max_concurrent_activities: int = 32,
                 workflows: list[type] | None = None) -> Worker:
    """``workflows`` replaces the default ones (bench/baseline.py runs its plain loop on
    exactly the same worker configuration)."""
    engine = engine or get_engine(settings.database_url)
    return Worker(
        client,
        task_queue=task_queue or settings.temporal.task_queue,
        workflows=workflows or WORKFLOWS,
        activities=build_activities(settings, engine),
        workflow_runner=(SandboxedWorkflowRunner() if settings.workflow_sandbox
                         else UnsandboxedWorkflowRunner()),
        activity_executor=ThreadPoolExecutor(max_workers=max_concurrent_activities),
        max_concurrent_activities=max_concurrent_activities,
        max_cached_workflows=settings.temporal.max_cached_workflows,
        deployment_config=deployment_config(settings.temporal),
    )


def deployment_config(temporal: TemporalSettings) -> WorkerDeploymentConfig | None:
    """Worker Versioning when configured (None: an unversioned worker, as before). Every
    workflow without a declared behavior is PINNED: a run finishes on the build that started it,
    so a build replays only histories it wrote itself; a subscription moves to the current
    version when it continues as new with AUTO_UPGRADE (README "Worker Versioning")."""
    if temporal.deployment_name is None or temporal.build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(temporal.deployment_name, temporal.build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.migrate_on_start:
        upgrade(settings.database_url)
    tracing = start_tracing(settings.tracing, "subscription-engine-worker",
                            get_engine(settings.database_url))
    client = await connect(settings, worker_runtime(settings), tracing)
    try:
        await ensure_reconcile_schedule(client, settings)
    except RPCError as err:  # the worker's own work does not depend on it
        log.error("reconciliation schedule not created: %s", err)
    try:
        await ensure_prune_schedule(client, settings)
    except RPCError as err:
        log.error("event retention schedule not created: %s", err)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # D14: the outbox dispatcher lives beside the worker and stops with it.
    dispatcher = asyncio.create_task(Dispatcher(
        get_engine(settings.database_url), settings.notifications,
        https_only=settings.production).run(stop))
    async with worker:
        log.info("worker polling task queue %s at %s", settings.temporal.task_queue,
                 settings.temporal.address,
                 extra={"metrics": f"http://{settings.worker_metrics_address}/metrics"
                        if settings.worker_metrics_address else None})
        await stop.wait()
    await dispatcher
    if tracing:
        tracing.shutdown()
    log.info("worker stopped")


if __name__ == "__main__":
    asyncio.run(main())
