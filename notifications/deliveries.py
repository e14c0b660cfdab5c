"""Outbound webhook deliveries as operators see them: an endpoint's outbox rows by status, the
dead ones (``failed``: given up after ``max_attempts``) retried by hand, and finished rows
pruned with the events they copy (retention).

A retry by hand puts the dead row back in the queue as if new (pending, no attempts, due now),
so the dispatcher sends it on the normal path, with backoff and a new dead end if it keeps
failing; it never sends from the caller's thread.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from notifications.models import OutboxMessage, OutboxStatus, ReplayStatus, WebhookReplay
from store.engine import session_scope

DEAD = OutboxStatus.FAILED.value


def list_deliveries(engine: Engine, *, endpoint_id: str | None = None,
                    status: str | None = None, limit: int = 100,
                    starting_after: int | None = None) -> list[OutboxMessage]:
    """Webhook deliveries ordered by id (cursor: ``starting_after``), of one endpoint or all."""
    q = select(OutboxMessage).where(OutboxMessage.channel == "webhook")
    if endpoint_id is not None:
        q = q.where(OutboxMessage.recipient == endpoint_id)
    if status is not None:
        q = q.where(OutboxMessage.status == status)
    if starting_after is not None:
        q = q.where(OutboxMessage.id > starting_after)
    with Session(engine) as session:
        return list(session.exec(q.order_by(OutboxMessage.id).limit(limit)).all())


def get_delivery(engine: Engine, delivery_id: int) -> OutboxMessage | None:
    with Session(engine) as session:
        row = session.get(OutboxMessage, delivery_id)
    return row if row is not None and row.channel == "webhook" else None


def retry_dead(engine: Engine, delivery_id: int, now: datetime) -> bool:
    """Queue a dead delivery again; False if it is not dead (sent, skipped, or queued
    already, e.g. by a retry a moment ago)."""
    with session_scope(engine) as session:
        return session.exec(update(OutboxMessage).where(
            OutboxMessage.id == delivery_id, OutboxMessage.channel == "webhook",
            OutboxMessage.status == DEAD).values(
                status=OutboxStatus.PENDING.value, attempts=0, next_attempt_at=now,
                claim_token=None)).rowcount == 1


def prune_finished(engine: Engine, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` outbox rows created before ``before`` that are done (sent,
    skipped or dead), and replay requests whose events are all queued; how many outbox rows.
    Pending rows stay whatever their age (an ending notice can be due months later)."""
    before = before.astimezone(UTC)
    with session_scope(engine) as session:
        ids = list(session.exec(select(OutboxMessage.id).where(
            OutboxMessage.created < before,
            OutboxMessage.status != OutboxStatus.PENDING.value)
            .order_by(OutboxMessage.id).limit(limit)).all())
        if ids:
            session.exec(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
        session.exec(delete(WebhookReplay).where(
            WebhookReplay.created < before, WebhookReplay.status == ReplayStatus.QUEUED.value))
    return len(ids)
