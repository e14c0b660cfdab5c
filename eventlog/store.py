"""Append and read D8 events; appending the same event twice is a no-op.

The event log sits below notifications (which reads it), so it does not know the outbox:
whoever must write alongside an event passes ``in_transaction``, called for each new event
inside the transaction that stores it (notifications.outbox.record queues its messages that way).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from domain.model import Actor, Event
from eventlog.models import SubscriptionEventRow, SubscriptionView
from store.engine import session_scope


def _row(event: Event) -> SubscriptionEventRow:
    data = event.data
    return SubscriptionEventRow(
        id=event.id,
        subscription_id=data["id"],
        organization_id=organization_of(data),
        customer_id=data["customer"],
        seq=int(event.id.rsplit("_", 1)[1]),
        type=event.type,
        created=event.created,
        request_actor_kind=event.request.kind if event.request else None,
        request_actor_id=event.request.id if event.request else None,
        data=data,
        previous_attributes=event.previous_attributes,
    )


def organization_of(data: dict) -> str:
    """The organization a snapshot belongs to (events of the first releases carry none: their
    customer stood for it)."""
    return data.get("organization") or data["customer"]


def to_event(row: SubscriptionEventRow) -> Event:
    return Event(id=row.id, type=row.type, created=_utc(row.created),
                 request=Actor(kind=row.request_actor_kind, id=row.request_actor_id)
                 if row.request_actor_kind else None,
                 data=row.data, previous_attributes=row.previous_attributes)


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _project(session: Session, row: SubscriptionEventRow) -> None:
    """Upsert the read model from the event's snapshot unless a newer event got there first."""
    d = row.data
    view = session.get(SubscriptionView, row.subscription_id)
    if view is not None and view.last_event_seq >= row.seq:
        return
    view = view or SubscriptionView(id=row.subscription_id)
    view.organization_id = organization_of(d)
    view.customer_id, view.plan_id, view.status = d["customer"], d["plan"], d["status"]
    view.current_period_start = _dt(d["current_period_start"])
    view.current_period_end = _dt(d["current_period_end"])
    view.cancel_at, view.canceled_at = _dt(d["cancel_at"]), _dt(d["canceled_at"])
    view.ended_at, view.cancel_at_period_end = _dt(d["ended_at"]), d["cancel_at_period_end"]
    # Facts added to the snapshot later: an event stored before carries none (null).
    for name in ("created", "start_date", "billing_cycle_anchor", "trial_end", "grace_until"):
        setattr(view, name, _dt(d.get(name)))
    renewal = d.get("renewal") or {}
    view.renewal_line, view.renewal_date = renewal.get("line"), _dt(renewal.get("date"))
    view.cancellation_details = d.get("cancellation_details")
    view.pause_collection, view.discount = d.get("pause_collection"), d.get("discount")
    view.pending_plan_id, view.hold = d.get("pending_plan"), d.get("hold")
    view.last_event_seq = row.seq
    session.add(view)


InTransaction = Callable[[Session, Event], object]


def append(engine: Engine, event: Event, *, in_transaction: InTransaction | None = None) -> bool:
    """Store the event and project it; False if it was already stored (a retried activity)."""
    return append_many(engine, [event], in_transaction=in_transaction) == 1


def append_many(engine: Engine, events: list[Event], *,
                in_transaction: InTransaction | None = None) -> int:
    """Store the events of one decision in one transaction (one commit, not one per event),
    with their projection and whatever ``in_transaction`` writes for each; returns how many
    were new. Events already stored (a retried activity) are skipped. The first try writes
    without looking: a retry is rare, and a read before every write cost each request a
    transaction of its own. A conflict then says which ones are stored; the rest are written
    again, and a conflict that is not a stored event is raised, never taken for one."""
    if not events:
        return 0
    try:
        return _insert(engine, events, in_transaction)
    except IntegrityError:
        with Session(engine) as session:
            stored = set(session.exec(select(SubscriptionEventRow.id).where(
                SubscriptionEventRow.id.in_([e.id for e in events]))))
        if not stored:
            raise
        fresh = [e for e in events if e.id not in stored]
        return _insert(engine, fresh, in_transaction) if fresh else 0


def _insert(engine: Engine, events: list[Event], in_transaction: InTransaction | None) -> int:
    with session_scope(engine) as session:
        for event in events:
            row = _row(event)
            session.add(row)
            _project(session, row)
            if in_transaction is not None:
                in_transaction(session, event)
    return len(events)


def list_views(engine: Engine, organization_id: str, *, customer_id: str | None = None,
               status: str | None = None, plan_id: str | None = None, limit: int = 100,
               starting_after: str | None = None) -> list[SubscriptionView]:
    """Subscriptions of one organization, filtered, ordered by id (cursor: starting_after)."""
    query = select(SubscriptionView).where(SubscriptionView.organization_id == organization_id)
    for column, value in ((SubscriptionView.customer_id, customer_id),
                          (SubscriptionView.status, status),
                          (SubscriptionView.plan_id, plan_id)):
        if value is not None:
            query = query.where(column == value)
    if starting_after:
        query = query.where(SubscriptionView.id > starting_after)
    with Session(engine) as session:
        rows = session.exec(query.order_by(SubscriptionView.id).limit(limit)).all()
    return [_utc_view(v) for v in rows]


def get_view(engine: Engine, subscription_id: str) -> SubscriptionView | None:
    with Session(engine) as session:
        view = session.get(SubscriptionView, subscription_id)
    return _utc_view(view) if view else None


_INSTANTS = ("current_period_start", "current_period_end", "cancel_at", "canceled_at",
             "ended_at", "created", "start_date", "billing_cycle_anchor", "trial_end",
             "renewal_date", "grace_until")


def _utc_view(view: SubscriptionView) -> SubscriptionView:
    for name in _INSTANTS:
        value = getattr(view, name)
        if value is not None:
            setattr(view, name, _utc(value))
    return view


def _utc(value: datetime) -> datetime:
    """SQLite drops the offset on read; every stored instant is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def list_events(engine: Engine, subscription_id: str, limit: int = 100,
                after_seq: int = 0) -> list[Event]:
    with Session(engine) as session:
        rows = session.exec(
            select(SubscriptionEventRow)
            .where(SubscriptionEventRow.subscription_id == subscription_id,
                   SubscriptionEventRow.seq > after_seq)
            .order_by(SubscriptionEventRow.seq)
            .limit(limit)
        ).all()
    return [to_event(r) for r in rows]


def customer_views(engine: Engine, customer_id: str) -> list[SubscriptionView]:
    """Every subscription of one customer (the wallet rules D18/D19 look at all of them)."""
    with Session(engine) as session:
        rows = session.exec(select(SubscriptionView)
                            .where(SubscriptionView.customer_id == customer_id)
                            .order_by(SubscriptionView.id)).all()
    return [_utc_view(v) for v in rows]
