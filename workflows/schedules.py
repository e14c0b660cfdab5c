"""Temporal Schedules the deployment needs, created idempotently: by every worker at start-up
(the first one creates, the others find it), and brought in line with the settings when they
changed. They show on the Web UI's Schedules page.

- ``reconcile-payments``: the payments reconciliation job (workflows.reconcile) every
  ``SUBS_RECONCILE__INTERVAL`` (0: no schedule is created; an existing one is left alone).
- ``prune-events``: the event retention job (workflows.prune) every
  ``SUBS_EVENTS__PRUNE_INTERVAL`` (0 likewise).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio.client import (Client, Schedule, ScheduleActionStartWorkflow,
                               ScheduleAlreadyRunningError, ScheduleIntervalSpec,
                               ScheduleOverlapPolicy, SchedulePolicy, ScheduleSpec, ScheduleState,
                               ScheduleUpdate)

from activities.types import ReconcileRequest
from config.settings import Settings
from eventlog.retention import PruneRequest
from workflows.prune import PruneEventsWorkflow
from workflows.reconcile import ReconcilePaymentsWorkflow

RECONCILE_SCHEDULE_ID = "reconcile-payments"
PRUNE_SCHEDULE_ID = "prune-events"


def reconcile_schedule(settings: Settings) -> Schedule:
    return _every(settings.reconcile.interval, ReconcilePaymentsWorkflow.run, ReconcileRequest(),
                  RECONCILE_SCHEDULE_ID, settings,
                  note="payments reconciliation: payments/reconcile.py")


def prune_schedule(settings: Settings) -> Schedule:
    return _every(settings.events.prune_interval, PruneEventsWorkflow.run, PruneRequest(),
                  PRUNE_SCHEDULE_ID, settings, note="event retention: eventlog/retention.py")


def _every(interval: timedelta, run: Callable, request: object, schedule_id: str,
           settings: Settings, note: str) -> Schedule:
    """A job's workflow started every ``interval`` on the worker's task queue (its id is the
    schedule's); a run still going when the next is due makes the schedule skip that one."""
    return Schedule(
        action=ScheduleActionStartWorkflow(run, request, id=schedule_id,
                                           task_queue=settings.temporal.task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=note))


async def ensure_reconcile_schedule(client: Client, settings: Settings) -> bool:
    """Create the schedule, or update it if its interval or task queue differ from the
    settings. False when the interval is 0 (nothing done)."""
    if settings.reconcile.interval <= timedelta(0):
        return False
    return await _ensure(client, RECONCILE_SCHEDULE_ID, reconcile_schedule(settings))


async def ensure_prune_schedule(client: Client, settings: Settings) -> bool:
    """As ``ensure_reconcile_schedule``, for ``prune-events``."""
    if settings.events.prune_interval <= timedelta(0):
        return False
    return await _ensure(client, PRUNE_SCHEDULE_ID, prune_schedule(settings))


async def _ensure(client: Client, schedule_id: str, wanted: Schedule) -> bool:
    try:
        await client.create_schedule(schedule_id, wanted)
        return True
    except ScheduleAlreadyRunningError:
        pass
    handle = client.get_schedule_handle(schedule_id)
    current = (await handle.describe()).schedule
    if _shape(current) != _shape(wanted):
        await handle.update(lambda _: ScheduleUpdate(schedule=wanted))
    return True


def _shape(schedule: Schedule) -> tuple:
    action = schedule.action
    queue = action.task_queue if isinstance(action, ScheduleActionStartWorkflow) else None
    return [i.every for i in schedule.spec.intervals], queue
