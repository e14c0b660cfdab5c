"""Events are kept for a retention period (``SUBS_EVENTS__RETENTION``, 30 days like Stripe's);
older ones are deleted in small batches, each its own short transaction, so pruning a large
backlog never holds a long lock on the table that every decision writes to.

Nothing reads old events to decide anything: the read model (subscription_view) holds each
subscription's newest state, and the workflow its own. Deleting the same ids twice (two
pruners at once) deletes nothing the second time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import select

from eventlog.models import SubscriptionEventRow
from store.engine import session_scope


def prune_batch(engine: Engine, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest events created before ``before``; how many."""
    row = SubscriptionEventRow
    with session_scope(engine) as session:
        ids = list(session.exec(select(row.id).where(row.created < before.astimezone(UTC))
                                .order_by(row.created).limit(limit)).all())
        if not ids:
            return 0
        return session.exec(delete(row).where(row.id.in_(ids))).rowcount


class PruneRequest(BaseModel):
    """One run of the pruning job; ``before`` overrides now minus the retention (by hand)."""

    before: datetime | None = None


class PruneReport(BaseModel):
    before: datetime
    events: int = 0  # D8 events deleted
    deliveries: int = 0  # finished outbox rows deleted
