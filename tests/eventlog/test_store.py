"""The D8 event store and the subscription read model, on SQLite and PostgreSQL.

Events come from the real lifecycle core (tests.domain.helpers.Driver), so the rows are the
ones the workflow's ``record_event`` activity writes."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from domain.model import Actor
from domain.requests import Cancel, Reactivate
from eventlog import store
from eventlog.models import SubscriptionEventRow
from store.engine import get_engine
from tests.domain.helpers import CUSTOMER, Driver, at


def _history() -> Driver:
    """Created Jan 31, renewed Feb 29 (leap year), cancelled at period end, reactivated."""
    d = Driver.create(at(2024, 1, 31, 12))
    d.advance(at(2024, 2, 29, 12, 0, 1))
    d.request(Cancel(mode="at_period_end", requested_by=CUSTOMER), at(2024, 3, 10))
    d.request(Reactivate(requested_by=CUSTOMER), at(2024, 3, 11))
    return d


def test_append_is_idempotent_by_event_id(db_url):
    engine = get_engine(db_url)
    events = _history().events
    assert len(events) >= 4
    assert all(store.append(engine, e) for e in events)
    assert not any(store.append(engine, e) for e in events)  # a retried activity
    stored = store.list_events(engine, events[0].data["id"])
    assert [e.id for e in stored] == [e.id for e in events]
    assert [e.type for e in stored] == [e.type for e in events]


def test_a_batch_retried_in_part_writes_only_the_new_events(db_url):
    """append_many writes without reading first: a batch whose first events are stored
    already (a retried activity after a partial success elsewhere) stores the rest, once."""
    engine = get_engine(db_url)
    events = _history().events
    assert store.append_many(engine, events[:2]) == 2
    assert store.append_many(engine, events) == len(events) - 2
    assert store.append_many(engine, events) == 0
    assert [e.id for e in store.list_events(engine, events[0].data["id"])] == \
        [e.id for e in events]


def test_a_conflict_that_is_not_a_stored_event_is_raised_not_skipped(db_url):
    """Whatever is written with an event (its messages, its invoice) can conflict too; that
    must fail the write, never pass for a duplicate event and lose the event."""
    engine = get_engine(db_url)
    events = _history().events

    def conflicting(session, event):
        session.add(SubscriptionEventRow(**{**store._row(events[0]).model_dump(),
                                            "id": "evt_clash"}))

    store.append_many(engine, [events[0]])
    store.append_many(engine, [events[1]], in_transaction=conflicting)
    with pytest.raises(IntegrityError):
        store.append_many(engine, [events[2]], in_transaction=conflicting)
    assert {e.id for e in store.list_events(engine, events[0].data["id"])} == \
        {events[0].id, events[1].id, "evt_clash"}  # events[2] is not taken for stored


def test_who_requested_is_kept_and_automatic_changes_have_no_requester(db_url):
    engine = get_engine(db_url)
    for e in _history().events:
        store.append(engine, e)
    stored = store.list_events(engine, _history().events[0].data["id"])
    requested = [e for e in stored if e.request is not None]
    assert requested and all(e.request == Actor(kind="customer", id="usr_owner")
                             for e in requested if e.request.kind == "customer")
    assert any(e.request is None for e in stored)  # renewal: automatic


def test_the_view_follows_the_newest_event_even_when_older_ones_arrive_late(db_url):
    engine = get_engine(db_url)
    events = _history().events
    last = events[-1]
    store.append(engine, last)
    for e in reversed(events[:-1]):  # out of order: older events after the newest
        store.append(engine, e)
    view = store.get_view(engine, last.data["id"])
    assert view.status == last.data["status"] == "active"
    assert view.cancel_at is None and view.cancel_at_period_end is False
    assert view.current_period_end == at(2024, 3, 31, 12)  # Jan 31 anchor kept after Feb 29
    assert view.current_period_end.tzinfo is not None


def test_views_filter_by_organization_status_customer_and_page_by_id(db_url):
    engine = get_engine(db_url)
    ids = []
    for n in range(5):
        d = Driver.create(at(2025, 1, 1), sub_id=f"sub_{n}")
        if n % 2:
            d.request(Cancel(mode="at_period_end", requested_by=CUSTOMER), at(2025, 1, 2))
        for e in d.events:
            store.append(engine, e)
        ids.append(f"sub_{n}")
    org = Driver.create(at(2025, 1, 1)).state.organization_id
    all_views = store.list_views(engine, org)
    assert [v.id for v in all_views] == ids
    assert [v.id for v in store.list_views(engine, org, status="non_renewing")] == [
        "sub_1", "sub_3"]
    page = store.list_views(engine, org, limit=2, starting_after="sub_1")
    assert [v.id for v in page] == ["sub_2", "sub_3"]
    assert store.list_views(engine, "org_other") == []
