"""Activity that records D8 events durably (idempotent by event id)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session
from temporalio import activity

from domain.model import Event
from eventlog import store as eventlog
from invoices import events as invoice_events
from notifications import outbox


class EventActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn(name="record_event")
    def record_event(self, event: Event) -> None:
        self.record_events([event])

    def record_events(self, events: list[Event]) -> None:
        """The events of one decision in one transaction (apply_effects passes several)."""
        # With their notifications and what they do to open invoices, atomically.
        eventlog.append_many(self.engine, events, in_transaction=in_event_transaction)
        for event in events:
            # subscription_id comes from the workflow id in the activity's log context
            activity.logger.info("event %s", event.type, extra={"event_id": event.id,
                                                                "event_type": event.type})


def in_event_transaction(session: Session, event: Event) -> None:
    """What is written with each event: its effect on open invoices, its messages."""
    invoice_events.apply(session, event)  # first: a receipt queued below sees the invoice
    outbox.enqueue(session, event)
