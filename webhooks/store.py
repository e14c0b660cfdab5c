"""Claim an event before acting on it, so each Stripe event is processed once.

``claim`` inserts the event's row; the primary key arbitrates concurrent deliveries (exactly one
insert wins, the others see a duplicate). A handler that fails ``release``s its claim, so
Stripe's next delivery of the same event is processed again instead of being lost.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from store.engine import session_scope
from webhooks.models import StripeWebhookEvent


def claim(engine: Engine, event_id: str, event_type: str, created: datetime) -> bool:
    """True if this call is the first to see the event."""
    try:
        with session_scope(engine) as session:
            session.add(StripeWebhookEvent(id=event_id, type=event_type, created=created))
    except IntegrityError:
        return False
    return True


def finish(engine: Engine, event_id: str, outcome: str) -> None:
    with session_scope(engine) as session:
        session.exec(update(StripeWebhookEvent).where(StripeWebhookEvent.id == event_id)
                     .values(outcome=outcome[:255]))


def release(engine: Engine, event_id: str) -> None:
    with session_scope(engine) as session:
        session.exec(delete(StripeWebhookEvent).where(StripeWebhookEvent.id == event_id))


def get(engine: Engine, event_id: str) -> StripeWebhookEvent | None:
    with Session(engine) as session:
        return session.get(StripeWebhookEvent, event_id)
