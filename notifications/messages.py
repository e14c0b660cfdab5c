"""The text of each email, rendered when it is queued so the outbox row is self-contained."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.model import Event


def _date(value: datetime) -> str:
    """The exact instant, readable and unambiguous (D2, D14: the date paid access ends)."""
    return value.strftime("%B %-d, %Y at %H:%M:%S UTC")


def _link(template: str | None, data: dict[str, Any]) -> str:
    if not template:
        return ""
    return " " + template.format(subscription=data["id"], customer=data.get("customer", ""))


def render(kind: str, event: Event, about: datetime,
           payment_link: str | None = None) -> dict[str, Any]:
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
    elif kind == "payment_receipt":
        subject = "Your payment was received"
        body = (f"Thank you: we received the payment for your subscription {sub} ({plan}) "
                f"for the period from {data.get('current_period_start')} to "
                f"{data.get('current_period_end')}.")
    elif kind == "payment_failed":
        attempt = event.previous_attributes.get("attempt")
        subject = "Your payment failed"
        body = (f"The payment for your subscription {sub} ({plan}) failed"
                f"{f' (attempt {attempt})' if attempt else ''}. Please update your payment "
                "method; we will retry it.")
    elif kind == "payment_method_required":
        subject = "Your card was declined: please add a new payment method"
        code = (data.get("payment_required") or {}).get("decline_code")
        body = (f"The payment for your subscription {sub} ({plan}) was declined by your bank"
                f"{f' ({code})' if code else ''}, and this card cannot be charged again: we "
                f"will not retry it. Add a new payment method before {_date(about)} and we "
                "will charge it at once; otherwise the subscription ends then."
                f"{' Add it here:' + _link(payment_link, data) if payment_link else ''}")
    elif kind == "payment_action_required":
        subject = "Action required: confirm your payment"
        body = (f"Your bank asks you to confirm the payment for your subscription {sub} "
                f"({plan}) (3-D Secure authentication), so we could not charge it "
                "automatically and will not retry it until you do. Confirm your card with your "
                f"bank by adding it again as your payment method before {_date(about)}: we "
                "will charge it at once. Otherwise the subscription ends then."
                f"{' Confirm it here:' + _link(payment_link, data) if payment_link else ''}")
    else:
        raise ValueError(f"unknown email kind {kind!r}")
    return {"subject": subject, "text": body, "subscription": sub,
            "about": about.isoformat(), "event_type": event.type}
