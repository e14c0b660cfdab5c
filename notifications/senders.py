"""The two transports: SMTP (smtplib) for emails, HTTP POST for outbound webhooks.

Each raises on failure, so the dispatcher backs off and retries; each makes duplicates
recognisable: a Message-ID derived from the outbox dedupe key, and the event id in the webhook
body and headers.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import time
from email.message import EmailMessage
from datetime import datetime
from email.utils import format_datetime

import httpx

from config.settings import NotificationSettings
from notifications import signing
from notifications.models import OutboxMessage, WebhookEndpoint


def message_id(dedupe_key: str, domain: str = "subscriptions.local") -> str:
    """Stable per message: a resent copy has the same Message-ID, so mail clients drop it."""
    return f"<{hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]}@{domain}>"


def build_email(message: OutboxMessage, settings: NotificationSettings, now: datetime,
                attachments: tuple[tuple[str, bytes], ...] = ()) -> EmailMessage:
    """``attachments``: (file name, PDF bytes), e.g. the invoice of a payment receipt."""
    email = EmailMessage()
    email["From"] = settings.from_address
    email["To"] = message.recipient
    email["Subject"] = message.payload["subject"]
    email["Message-ID"] = message_id(message.dedupe_key)
    email["Date"] = format_datetime(now)  # sent now, even if queued weeks ago
    email["X-Subscription-Id"] = message.subscription_id
    email["X-Notification-Kind"] = message.kind
    email.set_content(message.payload["text"])
    for filename, content in attachments:
        email.add_attachment(content, maintype="application", subtype="pdf",
                             filename=filename)
    return email


def send_email(message: OutboxMessage, settings: NotificationSettings, now: datetime,
               attachments: tuple[tuple[str, bytes], ...] = ()) -> None:
    """Blocking: the dispatcher runs it in a thread."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                      timeout=settings.smtp_timeout_seconds) as smtp:
        smtp.send_message(build_email(message, settings, now, attachments))


def webhook_body(message: OutboxMessage) -> bytes:
    return json.dumps(message.payload["event"], sort_keys=True,
                      separators=(",", ":")).encode()


async def post_webhook(client: httpx.AsyncClient, message: OutboxMessage,
                       endpoint: WebhookEndpoint, settings: NotificationSettings) -> None:
    body = webhook_body(message)
    response = await client.post(endpoint.url, content=body, headers={
        "Content-Type": "application/json",
        signing.HEADER: signing.header(endpoint.secret, int(time.time()), body),
        signing.EVENT_ID_HEADER: message.event_id,
    }, timeout=settings.webhook_timeout_seconds)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"webhook answered HTTP {response.status_code}")
