"""Retention (issue 15): events older than the retention period are deleted in batches, with
the finished outbox rows of that age, on SQLite and PostgreSQL; younger events, pending
deliveries (an ending notice due months later) and the read model stay. The job runs as the
``prune-events`` Schedule on the real worker (the dev server: the time-skipping one has no
schedules)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from activities.retention import prune
from config.settings import EventSettings, Settings
from domain.requests import Cancel
from eventlog import store as eventlog
from eventlog.models import SubscriptionEventRow
from eventlog.retention import PruneReport
from notifications import outbox
from notifications.endpoints import create_endpoint
from notifications.models import OutboxMessage, OutboxStatus
from store.engine import get_engine, session_scope
from store.types import utcnow
from tests.domain.helpers import at
from tests.notifications.support import driver_for, emitted, make_tenant


def _world(url: str):
    """Sub_old: events on Jan 1-20 (old); sub_new: on Mar 1 (young). Every outbox row of the
    old events is sent, except the ending notice, still pending."""
    engine = get_engine(url)
    tenant = make_tenant(url)
    create_endpoint(engine, tenant.organization_id, "https://example.com/hooks")
    old = driver_for(tenant, at(2026, 1, 1), sub_id="sub_old")
    old.request(Cancel(mode="at_period_end"), at(2026, 1, 20))
    young = driver_for(tenant, at(2026, 3, 1), sub_id="sub_new")
    outbox.record(engine, emitted(old, tenant))
    outbox.record(engine, emitted(young, tenant))
    with session_scope(engine) as session:  # created when the events were, long ago
        for row in session.exec(select(OutboxMessage)).all():
            row.created = at(2026, 1, 20) if row.event_id.startswith("evt_sub_old") \
                else at(2026, 3, 1)
            if row.kind != "ending_notice":
                row.status = OutboxStatus.SENT.value
            session.add(row)
    return engine


def _events(engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.exec(select(SubscriptionEventRow.id)).all())


def test_prune_deletes_old_events_and_finished_deliveries_in_batches(db_url):
    engine = _world(db_url)
    before = _events(engine)
    old = [e for e in before if e.startswith("evt_sub_old")]
    assert len(old) >= 3
    old_rows = len(outbox.list_messages(engine, subscription_id="sub_old"))
    report = prune(engine, EventSettings(prune_batch_size=2), at(2026, 2, 1))
    assert report.events == len(old)
    assert _events(engine) == [e for e in before if e not in old]
    left = outbox.list_messages(engine)
    assert {(m.event_id.startswith("evt_sub_old"), m.status) for m in left} == {
        (True, OutboxStatus.PENDING.value), (False, OutboxStatus.SENT.value)}
    assert report.deliveries == old_rows - 1  # all of sub_old's but the pending notice
    assert eventlog.get_view(engine, "sub_old") is not None  # the read model stays
    again = prune(engine, EventSettings(prune_batch_size=2), at(2026, 2, 1))
    assert (again.events, again.deliveries) == (0, 0)


@pytest.mark.temporal
async def test_the_prune_events_schedule_runs_the_job_on_the_worker(sqlite_url,
                                                                    localstripe_url):
    from tests.fakes_stripe import stripe_settings
    from tests.support.temporal import dev_server_env
    from workers.main import build_worker
    from workflows.prune import PruneEventsWorkflow
    from workflows.schedules import PRUNE_SCHEDULE_ID, ensure_prune_schedule

    engine = _world(sqlite_url)
    settings = Settings(database_url=sqlite_url, stripe=stripe_settings(localstripe_url),
                        events=EventSettings(retention=utcnow() - at(2026, 2, 1)))
    assert not await ensure_prune_schedule(None, settings.model_copy(update={  # type: ignore
        "events": EventSettings(prune_interval=timedelta(0))}))
    env = await dev_server_env()
    try:
        assert await ensure_prune_schedule(env.client, settings)
        schedule = env.client.get_schedule_handle(PRUNE_SCHEDULE_ID)
        async with build_worker(env.client, settings):
            await schedule.trigger()
            while not (await schedule.describe()).info.recent_actions:
                await asyncio.sleep(0.2)
            action = (await schedule.describe()).info.recent_actions[0].action
            report: PruneReport = await asyncio.wait_for(env.client.get_workflow_handle_for(
                PruneEventsWorkflow.run, action.workflow_id).result(), 60)
    finally:
        await env.shutdown()
    assert report.events > 0
    assert all(e.startswith("evt_sub_new") for e in _events(engine))
