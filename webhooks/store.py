"""Claim an event before acting on it: a lease, so each Stripe event is acted on once and a
handler that dies mid event loses it only until its lease runs out.

``claim`` inserts the event's row with a lease (the primary key arbitrates concurrent first
deliveries: exactly one insert wins). A later delivery finds the row and gets one of three
answers: finished (a duplicate: nothing to do), leased to a live holder (busy: come back after
the lease), or leased to a holder whose lease ran out (it died): that delivery takes the claim
over with a compare-and-set on ``attempts``, so of several concurrent deliveries exactly one
wins. ``finish`` is final; a handler that fails ``release``s its lease so Stripe's next delivery
takes over at once. Only the holder (id, attempts) can finish or release.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.engine import session_scope
from store.types import utcnow
from webhooks.models import StripeWebhookEvent

Status = Literal["new", "taken_over", "done", "busy"]


@dataclass(frozen=True)
class Claim:
    event_id: str
    status: Status
    attempts: int  # the holder's attempt number: identifies this claim (new, taken_over)
    retry_after: int = 0  # busy: whole seconds until the holder's lease runs out


def claim(engine: Engine, event_id: str, event_type: str, created: datetime, *,
          lease: timedelta, now: datetime | None = None) -> Claim:
    """Take the event for ``lease`` unless it is finished or held by a live lease."""
    now = now or utcnow()
    try:
        with session_scope(engine) as session:
            session.add(StripeWebhookEvent(id=event_id, type=event_type, created=created,
                                           lease_until=now + lease))
        return Claim(event_id, "new", 1)
    except IntegrityError:
        pass
    row = get(engine, event_id)
    assert row is not None  # rows are never deleted
    if row.outcome is None and _take_over(engine, row, now + lease, now):
        return Claim(event_id, "taken_over", row.attempts + 1)
    row = get(engine, event_id)
    if row.outcome is not None:
        return Claim(event_id, "done", row.attempts)
    # The holder may have read the clock a moment after us: never more than one lease.
    remaining = min((row.lease_until - now).total_seconds() if row.lease_until else 0,
                    lease.total_seconds())
    return Claim(event_id, "busy", row.attempts, retry_after=max(1, math.ceil(remaining)))


def _take_over(engine: Engine, row: StripeWebhookEvent, until: datetime, now: datetime) -> bool:
    lease = StripeWebhookEvent.lease_until
    with session_scope(engine) as session:
        result = session.exec(update(StripeWebhookEvent).where(
            StripeWebhookEvent.id == row.id, StripeWebhookEvent.attempts == row.attempts,
            StripeWebhookEvent.outcome.is_(None), or_(lease.is_(None), lease <= now),
        ).values(lease_until=until, attempts=row.attempts + 1))
        return result.rowcount == 1


def _as_holder(engine: Engine, claim: Claim, **values) -> bool:
    """Change the row only while ``claim`` still holds it (not finished, not taken over)."""
    with session_scope(engine) as session:
        result = session.exec(update(StripeWebhookEvent).where(
            StripeWebhookEvent.id == claim.event_id,
            StripeWebhookEvent.attempts == claim.attempts,
            StripeWebhookEvent.outcome.is_(None)).values(**values))
        return result.rowcount == 1


def finish(engine: Engine, claim: Claim, outcome: str) -> bool:
    """Done for good: every later delivery is a duplicate. False if the lease was lost (the
    handler outlived it and another delivery took over; its actions are idempotent)."""
    return _as_holder(engine, claim, outcome=outcome[:255], lease_until=None)


def release(engine: Engine, claim: Claim) -> bool:
    """Give the event back at once (the handler failed): the next delivery takes it over."""
    return _as_holder(engine, claim, lease_until=None)


def get(engine: Engine, event_id: str) -> StripeWebhookEvent | None:
    with Session(engine) as session:
        return session.get(StripeWebhookEvent, event_id)
