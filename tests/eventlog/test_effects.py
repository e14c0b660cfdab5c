"""The workflow's one local activity for the writes of a decision (``apply_effects``): events
(with projection and outbox rows) and credit movements, in the core's order, each exactly once
however often Temporal runs the batch again. On SQLite and PostgreSQL, with real core events."""

from __future__ import annotations

from sqlmodel import Session, func, select
from temporalio.testing import ActivityEnvironment

from activities.credits import CreditActivities
from activities.effects import EffectActivities
from activities.events import EventActivities
from activities.types import CreditChangeEffect, EffectBatch, EventEffect, GrantEffect
from domain.model import Actor
from domain.requests import Cancel
from eventlog import store
from eventlog.models import SubscriptionEventRow
from ledger.models import CreditEntry
from ledger.service import Ledger
from notifications.models import OutboxMessage
from store.engine import get_engine
from tests.domain.helpers import at
from tests.ledger.conftest import forfeit_of, grant
from tests.notifications.support import driver_for, emitted, make_tenant


def _count(engine, column) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count(column))).one()


def test_a_batch_applied_twice_writes_every_effect_once(db_url):
    engine = get_engine(db_url)
    tenant = make_tenant(db_url)
    driver = driver_for(tenant, at(2024, 1, 31, 12))
    driver.request(Cancel(mode="at_period_end", requested_by=Actor(kind="customer", id="c")),
                   at(2024, 2, 10))
    events = emitted(driver, tenant)
    assert {"customer.subscription.created", "customer.subscription.updated"} <= {
        e.type for e in events}
    g = grant(1000, at(2024, 1, 31, 12), at(2024, 2, 29, 12), customer=tenant.customer_id)
    batch = EffectBatch(subscription_id="sub_1", effects=[
        EventEffect(event=events[0]), GrantEffect(grant=g),
        *[EventEffect(event=e) for e in events[1:]],
        CreditChangeEffect(kind="forfeit_period_credits", change=forfeit_of(g))])
    ledger = Ledger(engine)
    effects = EffectActivities(CreditActivities(ledger), EventActivities(engine))

    env = ActivityEnvironment()
    assert env.run(effects.apply_effects, batch) == len(batch.effects)
    outbox = _count(engine, OutboxMessage.id)
    assert outbox >= 1  # the cancel confirmation email (D14), atomic with its event
    env.run(effects.apply_effects, batch)  # Temporal retried the local activity

    assert [e.id for e in store.list_events(engine, "sub_1")] == [e.id for e in events]
    assert _count(engine, SubscriptionEventRow.id) == len(events)
    assert _count(engine, OutboxMessage.id) == outbox
    view = store.get_view(engine, "sub_1")
    assert view.cancel_at_period_end is True  # the projection followed the newest event
    with Session(engine) as session:  # the unique idempotency key held: one row each
        rows = session.exec(select(CreditEntry.entry_type, CreditEntry.amount).where(
            CreditEntry.customer_id == tenant.customer_id)).all()
    assert sorted(rows) == [("forfeit", 1000), ("grant", 1000)]
    assert ledger.balances(tenant.customer_id, at(2024, 3, 1)).subscription == 0


def test_append_many_stores_only_the_events_not_stored_yet(db_url):
    engine = get_engine(db_url)
    tenant = make_tenant(db_url)
    driver = driver_for(tenant, at(2024, 1, 31, 12))
    driver.advance(at(2024, 2, 29, 12, 0, 1))
    events = emitted(driver, tenant)
    assert len(events) >= 2
    assert store.append(engine, events[0])  # an earlier attempt got the first one in
    assert store.append_many(engine, events) == len(events) - 1
    assert store.append_many(engine, events) == 0
    assert [e.id for e in store.list_events(engine, "sub_1")] == [e.id for e in events]
