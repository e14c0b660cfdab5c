"""One organization's D8 events in time order, filtered: GET /v1/events and webhook replays.

Ordered by (created, id), which the index ``ix_subscription_event_org_created`` serves; a page
ends at its last event and the next one starts strictly after that (created, id), so events of
the same instant are neither repeated nor skipped between pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar

from domain.model import Event
from eventlog.models import SubscriptionEventRow
from eventlog.store import to_event

Cursor = tuple[datetime, str]  # the (created, id) of the last event of the previous page


@dataclass(frozen=True)
class EventFilter:
    """``types``: exact types, or prefixes ending in ``*`` (``customer.subscription.*``);
    empty: every type. The range is ``created_gte <= created < created_lt``."""

    organization_id: str
    types: tuple[str, ...] = ()
    subscription_id: str | None = None
    customer_id: str | None = None
    created_gte: datetime | None = None
    created_lt: datetime | None = None


def _utc(value: datetime) -> datetime:
    """Stored instants are UTC (SQLite keeps them without an offset): compare in UTC."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def query(spec: EventFilter, after: Cursor | None = None) -> SelectOfScalar:
    row = SubscriptionEventRow
    q = select(row).where(row.organization_id == spec.organization_id)
    if spec.types:
        q = q.where(or_(*(row.type.startswith(t[:-1], autoescape=True) if t.endswith("*")
                          else row.type == t for t in spec.types)))
    if spec.subscription_id is not None:
        q = q.where(row.subscription_id == spec.subscription_id)
    if spec.customer_id is not None:
        q = q.where(row.customer_id == spec.customer_id)
    if spec.created_gte is not None:
        q = q.where(row.created >= _utc(spec.created_gte))
    if spec.created_lt is not None:
        q = q.where(row.created < _utc(spec.created_lt))
    if after is not None:
        created, event_id = _utc(after[0]), after[1]
        q = q.where(or_(row.created > created, and_(row.created == created, row.id > event_id)))
    return q.order_by(row.created, row.id)


def rows(session: Session, spec: EventFilter, *, limit: int,
         after: Cursor | None = None) -> list[SubscriptionEventRow]:
    """In the caller's transaction (a replay queues what it reads in the same one)."""
    return list(session.exec(query(spec, after).limit(limit)).all())


def list_events(engine: Engine, spec: EventFilter, *, limit: int,
                after: Cursor | None = None) -> list[Event]:
    with Session(engine) as session:
        return [to_event(r) for r in rows(session, spec, limit=limit, after=after)]


def position(engine: Engine, organization_id: str, event_id: str) -> Cursor | None:
    """Where a page that ended at ``event_id`` stops; None if the organization has no such
    event (another organization's, or pruned)."""
    with Session(engine) as session:
        row = session.get(SubscriptionEventRow, event_id)
    if row is None or row.organization_id != organization_id:
        return None
    return _utc(row.created), row.id
