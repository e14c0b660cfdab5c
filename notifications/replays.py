"""Replaying an endpoint's events of a time range: the request is stored, then the dispatcher
queues the events in batches as ordinary webhook rows of the outbox (the same signing, lease,
backoff and dead state as every delivery); nothing is sent in the request's thread.

Exactly once per request: a replay's row for an event has the dedupe key
``{event}:webhook:{endpoint}:{replay}``, so queueing a batch twice queues nothing more, and a
request repeated with the same Idempotency-Key finds the first replay instead of making
another. The body and the ``Subscriptions-Event-Id`` are the original event's, so a receiver
that drops event ids it already processed stays idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from accounts.ids import new_id
from eventlog import listing
from eventlog.store import to_event
from notifications.derive import webhook_event
from notifications.models import (OutboxMessage, OutboxStatus, ReplayStatus, WebhookEndpoint,
                                  WebhookReplay)
from store.engine import session_scope


class ReplayKeyReused(Exception):
    """The Idempotency-Key names a replay with a different range or types."""

    def __init__(self, replay: WebhookReplay) -> None:
        super().__init__(f"this Idempotency-Key was already used for replay {replay.id} "
                         "with a different range or types")
        self.replay = replay


def _same(replay: WebhookReplay, gte: datetime, lt: datetime | None, types: list[str]) -> bool:
    """``lt`` None: the request left the end open (now), so any end matches."""
    return (replay.created_gte == gte and (lt is None or replay.created_lt == lt)
            and sorted(replay.types) == sorted(types))


def request_replay(engine: Engine, endpoint: WebhookEndpoint, *, created_gte: datetime,
                   created_lt: datetime | None, types: list[str], idempotency_key: str | None,
                   now: datetime) -> tuple[WebhookReplay, bool]:
    """The stored replay request and whether it is new; with a key used before, the first
    one (ReplayKeyReused if it asked for something else). ``created_lt`` None: up to now."""
    if idempotency_key is not None:
        found = get_replay_by_key(engine, endpoint.id, idempotency_key)
        if found is not None:
            if not _same(found, created_gte, created_lt, types):
                raise ReplayKeyReused(found)
            return found, False
    replay = WebhookReplay(id=new_id("wrp"), endpoint_id=endpoint.id,
                           organization_id=endpoint.organization_id,
                           idempotency_key=idempotency_key, created_gte=created_gte,
                           created_lt=created_lt or now, types=list(types))
    try:
        with session_scope(engine) as session:
            session.add(replay)
    except IntegrityError:  # the same key at the same moment: the other request won
        found = get_replay_by_key(engine, endpoint.id, idempotency_key or "")
        if found is None:
            raise
        if not _same(found, created_gte, created_lt, types):
            raise ReplayKeyReused(found) from None
        return found, False
    return replay, True


def get_replay_by_key(engine: Engine, endpoint_id: str, key: str) -> WebhookReplay | None:
    with Session(engine) as session:
        return session.exec(select(WebhookReplay).where(
            WebhookReplay.endpoint_id == endpoint_id,
            WebhookReplay.idempotency_key == key)).first()


def get_replay(engine: Engine, replay_id: str) -> WebhookReplay | None:
    with Session(engine) as session:
        return session.get(WebhookReplay, replay_id)


@dataclass(frozen=True)
class ReplayProgress:
    """How a replay's deliveries stand, by outbox status."""

    queued: int
    sent: int
    pending: int
    failed: int


def progress(engine: Engine, replay_id: str) -> ReplayProgress:
    with Session(engine) as session:
        counts = dict(session.exec(select(OutboxMessage.status, func.count()).where(
            OutboxMessage.replay_id == replay_id).group_by(OutboxMessage.status)).all())
    return ReplayProgress(queued=sum(counts.values()),
                          sent=counts.get(OutboxStatus.SENT.value, 0),
                          pending=counts.get(OutboxStatus.PENDING.value, 0),
                          failed=counts.get(OutboxStatus.FAILED.value, 0))


def queue_pending(engine: Engine, now: datetime, *, batch: int) -> int:
    """Queue the next ``batch`` events of each pending replay (oldest requests first); the
    number of rows queued. Run by the dispatcher before it claims due rows."""
    with Session(engine) as session:
        pending = list(session.exec(select(WebhookReplay.id).where(
            WebhookReplay.status == ReplayStatus.PENDING.value)
            .order_by(WebhookReplay.created).limit(10)).all())
    return sum(_queue_batch(engine, replay_id, now, batch) for replay_id in pending)


def _queue_batch(engine: Engine, replay_id: str, now: datetime, batch: int) -> int:
    """One transaction: the next events after the replay's cursor become outbox rows and the
    cursor moves past them. The cursor moves only if nobody moved it meanwhile (``events`` and
    ``status`` as they were read), so two dispatchers never queue the same batch twice."""
    with session_scope(engine) as session:
        replay = session.get(WebhookReplay, replay_id)
        if replay is None or replay.status != ReplayStatus.PENDING.value:
            return 0
        spec = listing.EventFilter(organization_id=replay.organization_id,
                                   types=tuple(replay.types), created_gte=replay.created_gte,
                                   created_lt=replay.created_lt)
        after = (replay.cursor_created, replay.cursor_id) if replay.cursor_id else None
        rows = listing.rows(session, spec, limit=batch, after=after)
        values: dict = {"events": WebhookReplay.events + len(rows)}
        if rows:
            values.update(cursor_created=rows[-1].created, cursor_id=rows[-1].id)
        if len(rows) < batch:
            values["status"] = ReplayStatus.QUEUED.value
        moved = session.exec(update(WebhookReplay).where(
            WebhookReplay.id == replay.id, WebhookReplay.events == replay.events,
            WebhookReplay.status == ReplayStatus.PENDING.value).values(**values)).rowcount
        if moved != 1:
            return 0
        for row in rows:
            event = to_event(row)
            session.add(OutboxMessage(
                dedupe_key=f"{event.id}:webhook:{replay.endpoint_id}:{replay.id}",
                event_id=event.id, kind="webhook", channel="webhook",
                recipient=replay.endpoint_id, subscription_id=row.subscription_id,
                payload={"event": webhook_event(event)}, next_attempt_at=now,
                replay_id=replay.id))
        return len(rows)
