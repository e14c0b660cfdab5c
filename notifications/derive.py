"""Which messages a D8 event causes: a pure function of the event, the customer's address and
the organization's webhook endpoints, so the rules are unit-tested without a database.

- every event: one webhook per endpoint of the subscription's organization (D8);
- a cancellation scheduled or moved by a request: a confirmation with the exact end date and
  an ending notice due ``ending_notice`` before that date (D14; clamped to the event's time);
- an immediate cancellation by a request: a confirmation that access ended;
- a scheduled cancellation taking effect: an "ended" email;
- an automatic cancellation (dunning exhausted, D9): an auto-cancel email;
- a paid invoice: a payment confirmation, the invoice's PDF attached when sent;
- a failed payment: a payment-failed email ("we will retry it"); under rule version 3 a hard
  decline instead asks for a new payment method by the date the wait ends, and a payment
  needing authentication (``invoice.payment_action_required``) tells the customer what to do,
  with the payment link when one is configured (D9, domain.declines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from domain.model import Event
from notifications.messages import render

UPDATED = "customer.subscription.updated"
DELETED = "customer.subscription.deleted"
PAYMENT_FAILED = "invoice.payment_failed"
ACTION_REQUIRED = "invoice.payment_action_required"
PAID = "invoice.paid"
RECEIPT = "payment_receipt"


@dataclass(frozen=True)
class Message:
    """One outbox row to be: ``due`` is when it may first be sent."""

    kind: str
    channel: str  # "email" | "webhook"
    recipient: str  # an email address or a webhook endpoint id
    due: datetime
    payload: dict[str, Any] = field(default_factory=dict)

    def dedupe_key(self, event_id: str) -> str:
        return f"{event_id}:{self.kind}:{self.recipient}"


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def email_kinds(event: Event) -> list[tuple[str, datetime]]:
    """The emails an event causes, each with the date it is about (the end of access)."""
    data, request = event.data, event.request
    if event.type == UPDATED and request is not None and "cancel_at" in event.previous_attributes:
        ends = _when(data.get("cancel_at"))
        if ends is not None:  # scheduled or postponed; None is a reactivation
            return [("cancel_confirmation", ends), ("ending_notice", ends)]
    if event.type == DELETED:
        ended = _when(data.get("ended_at")) or event.created
        if request is not None:
            return [("cancel_confirmation", ended)]
        reason = (data.get("cancellation_details") or {}).get("reason")
        if reason in (None, "cancellation_requested"):
            return [("subscription_ended", ended)]
        return [("auto_cancel", ended)]
    if event.type == PAID:
        return [(RECEIPT, event.created)]
    if event.type in (PAYMENT_FAILED, ACTION_REQUIRED):
        required = data.get("payment_required")
        if required is None:
            return [("payment_failed", event.created)]
        until = _when(required.get("until")) or event.created
        kind = "payment_method_required" if required.get("reason") == "payment_method" \
            else "payment_action_required"
        return [(kind, until)]
    return []


def webhook_event(event: Event) -> dict[str, Any]:
    """The body receivers get: the same shape as GET /v1/subscriptions/{id}/events (Stripe's)."""
    dumped = event.model_dump(mode="json")  # datetimes serialised as the API does
    return {
        "id": event.id, "object": "event", "type": event.type, "created": dumped["created"],
        "request": dumped["request"],
        "data": {"object": dumped["data"], "previous_attributes": dumped["previous_attributes"]},
    }


def derive(event: Event, *, email: str | None, endpoint_ids: list[str],
           ending_notice: timedelta, payment_link: str | None = None) -> list[Message]:
    """``payment_link``: where a customer fixes a payment (``{subscription}`` and
    ``{customer}`` are filled in), written into the emails that ask them to act."""
    messages = [
        Message(kind="webhook", channel="webhook", recipient=endpoint_id, due=event.created,
                payload={"event": webhook_event(event)})
        for endpoint_id in endpoint_ids
    ]
    if email is None:
        return messages
    for kind, about in email_kinds(event):
        due = max(about - ending_notice, event.created) if kind == "ending_notice" \
            else event.created
        messages.append(Message(kind=kind, channel="email", recipient=email, due=due,
                                payload=render(kind, event, about, payment_link)))
    return messages
