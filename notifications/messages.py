"""The text of each email, rendered when it is queued so the outbox row is self-contained."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.model import Event


def _date(value: datetime) -> str:
    """The exact instant, readable and unambiguous (D2, D14: the date paid access ends)."""
    return value.strftime("%B %-d, %Y at %H:%M:%S UTC")


def render(kind: str, event: Event, about: datetime) -> dict[str, Any]:
    data = event.data
    sub, plan = data["id"], data.get("plan")
    if kind == "cancel_confirmation" and event.type.endswith(".deleted"):
        subject = "Your subscription has been cancelled"
        body = (f"Your subscription {sub} ({plan}) was cancelled. Paid access ended on "
                f"{_date(about)}.")
    elif kind == "cancel_confirmation":
        subject = f"Your subscription ends on {about:%B %-d, %Y}"
        body = (f"Your cancellation of {sub} ({plan}) is confirmed. You keep full access until "
                f"{_date(about)}; it will not renew. You can reactivate it until then.")
    elif kind == "ending_notice":
        subject = f"Your subscription is ending on {about:%B %-d, %Y}"
        body = (f"Your subscription {sub} ({plan}) ends on {_date(about)}. Reactivate it before "
                "then to keep your plan.")
    elif kind == "subscription_ended":
        subject = "Your subscription has ended"
        body = (f"Your subscription {sub} ({plan}) ended on {_date(about)}, as scheduled. Your "
                "content and settings are kept; you can subscribe again at any time.")
    elif kind == "auto_cancel":
        subject = "Your subscription was cancelled after failed payments"
        body = (f"We could not collect the payment for {sub} ({plan}), so it was cancelled on "
                f"{_date(about)}. Subscribe again at any time.")
    elif kind == "payment_failed":
        attempt = event.previous_attributes.get("attempt")
        subject = "Your payment failed"
        body = (f"The payment for your subscription {sub} ({plan}) failed"
                f"{f' (attempt {attempt})' if attempt else ''}. Please update your payment "
                "method; we will retry it.")
    else:
        raise ValueError(f"unknown email kind {kind!r}")
    return {"subject": subject, "text": body, "subscription": sub,
            "about": about.isoformat(), "event_type": event.type}
