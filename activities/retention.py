"""The retention job as an activity, for its scheduled workflow (workflows.prune): deletes
events older than ``SUBS_EVENTS__RETENTION`` and the finished outbox rows of that age, batch
by batch, heartbeating between batches. A retried or overlapping run deletes what is left."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine
from temporalio import activity

from config.settings import EventSettings
from eventlog.retention import PruneReport, PruneRequest, prune_batch
from notifications.deliveries import prune_finished
from store.types import utcnow

log = logging.getLogger("activities.retention")


def prune(engine: Engine, settings: EventSettings, before: datetime,
          beat: Callable[[int], None] = lambda _: None) -> PruneReport:
    """Delete in ``prune_batch_size`` batches until a batch comes back short."""
    report = PruneReport(before=before)
    for step, field in ((prune_batch, "events"), (prune_finished, "deliveries")):
        while True:
            deleted = step(engine, before, settings.prune_batch_size)
            setattr(report, field, getattr(report, field) + deleted)
            beat(report.events + report.deliveries)
            if deleted < settings.prune_batch_size:
                break
    return report


class RetentionActivities:
    def __init__(self, engine: Engine, settings: EventSettings) -> None:
        self.engine, self.settings = engine, settings

    @activity.defn(name="prune_events")
    def prune_events(self, request: PruneRequest) -> PruneReport:
        before = request.before or utcnow() - self.settings.retention
        report = prune(self.engine, self.settings, before, activity.heartbeat)
        log.info("pruned %d events and %d deliveries created before %s", report.events,
                 report.deliveries, before.isoformat())
        return report
