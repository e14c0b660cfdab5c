"""Activity that records D8 events durably (idempotent by event id)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from temporalio import activity

from domain.model import Event
from notifications import outbox


class EventActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn(name="record_event")
    def record_event(self, event: Event) -> None:
        self.record_events([event])

    def record_events(self, events: list[Event]) -> None:
        """The events of one decision in one transaction (apply_effects passes several)."""
        outbox.record(self.engine, events)  # with their notifications, atomically
        for event in events:
            # subscription_id comes from the workflow id in the activity's log context
            activity.logger.info("event %s", event.type, extra={"event_id": event.id,
                                                                "event_type": event.type})
