"""The outbox: queued in the event's transaction, leased by dispatchers, marked when done.

At least once: a row is sent, then marked; a dispatcher that dies in between leaves the row to
be sent again when its lease runs out (emails carry a Message-ID and webhooks an event id so
receivers drop the duplicate). Two dispatchers never hold the same lease: PostgreSQL claims
with ``FOR UPDATE SKIP LOCKED``, SQLite (one writer at a time) with a conditional UPDATE.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from accounts.models import Customer
from config.settings import get_settings
from domain.model import Event
from domain.periods import period_key
from eventlog import store as eventlog
from invoices import store as invoice_store
from invoices.kinds import period_invoice_key
from invoices.numbering import display
from invoices.pdf import money
from notifications.derive import RECEIPT, derive
from notifications.models import OutboxMessage, OutboxStatus, WebhookEndpoint
from store.engine import session_scope


def record(engine: Engine, events: list[Event]) -> int:
    """Store the events (eventlog.append_many) with their messages queued in the same
    transaction (D14: no event without its notifications, none without the event); returns how
    many events were new."""
    return eventlog.append_many(engine, events, in_transaction=enqueue)


def enqueue(session: Session, event: Event, ending_notice: timedelta | None = None) -> int:
    """Queue the event's messages in the caller's transaction (the one storing the event)."""
    data = event.data
    customer = session.get(Customer, data["customer"])
    organization = data.get("organization") or data["customer"]
    endpoint_ids = list(session.exec(select(WebhookEndpoint.id).where(
        WebhookEndpoint.organization_id == organization).order_by(WebhookEndpoint.id)).all())
    configured = get_settings().notifications
    notice = ending_notice if ending_notice is not None else configured.ending_notice
    messages = derive(event, email=customer.email if customer else None,
                      endpoint_ids=endpoint_ids, ending_notice=notice,
                      payment_link=configured.payment_link)
    queued = 0
    for m in messages:
        payload = _with_invoice(session, event, m.payload) if m.kind == RECEIPT else m.payload
        if payload is None:
            continue
        session.add(OutboxMessage(dedupe_key=m.dedupe_key(event.id), event_id=event.id,
                                  kind=m.kind, channel=m.channel, recipient=m.recipient,
                                  subscription_id=data["id"], payload=payload,
                                  next_attempt_at=m.due))
        queued += 1
    return queued


def _with_invoice(session: Session, event: Event, payload: dict) -> dict | None:
    """The receipt names the period's invoice; the dispatcher attaches its PDF when sending
    (rendered then, so the row stays small). None, and no receipt, when the period has no
    invoice (paid before invoices existed): there is nothing to confirm it with."""
    start = datetime.fromisoformat(event.data["current_period_start"])
    invoice = invoice_store.find_by_key(
        session, period_invoice_key(event.data["id"], period_key(start)))
    if invoice is None:
        return None
    number = display(invoice.number)
    return {**payload, "invoice_id": invoice.id, "invoice_number": number,
            "text": f"{payload['text']} Invoice {number}: "
                    f"{money(invoice.amount_paid, invoice.currency)} paid. "
                    "The receipt is attached."}


def claim(engine: Engine, now: datetime, *, limit: int, lease: timedelta) -> list[OutboxMessage]:
    """Lease up to ``limit`` due rows to this caller until ``now + lease``."""
    token = uuid.uuid4().hex
    due = (OutboxMessage.status == OutboxStatus.PENDING.value) & \
        (OutboxMessage.next_attempt_at <= now)
    lease_values = {"next_attempt_at": now + lease, "claim_token": token,
                    "attempts": OutboxMessage.attempts + 1}
    with session_scope(engine) as session:
        query = select(OutboxMessage.id).where(due).order_by(
            OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)
        if engine.dialect.name == "postgresql":
            ids = list(session.exec(query.with_for_update(skip_locked=True)).all())
            if ids:
                session.exec(update(OutboxMessage).where(OutboxMessage.id.in_(ids))
                             .values(**lease_values))
        else:
            # Candidates beyond ``limit``: a dispatcher racing another one for the first rows
            # still gets the next ones instead of nothing.
            claimed = 0
            for row_id in session.exec(query.limit(limit * 4)).all():
                result = session.exec(update(OutboxMessage).where(OutboxMessage.id == row_id,
                                                                  due).values(**lease_values))
                claimed += result.rowcount
                if claimed >= limit:
                    break
    with Session(engine) as session:
        return list(session.exec(select(OutboxMessage).where(
            OutboxMessage.claim_token == token,
            OutboxMessage.status == OutboxStatus.PENDING.value).order_by(OutboxMessage.id)).all())


def _finish(engine: Engine, message: OutboxMessage, **values) -> bool:
    """Only the lease holder may finish a row; False if its lease was lost to another."""
    return finish_many(engine, [(message, values)])[0]


def finish_many(engine: Engine, outcomes: list[tuple[OutboxMessage, dict]]) -> list[bool]:
    """Several rows' outcomes (values from ``sent``, ``skipped``, ``failed``, ``released``) in
    one transaction: a round of emails commits once instead of once per row. Per row, False
    if its lease was lost to another dispatcher."""
    with session_scope(engine) as session:
        return [session.exec(update(OutboxMessage).where(
            OutboxMessage.id == message.id, OutboxMessage.claim_token == message.claim_token,
            OutboxMessage.status == OutboxStatus.PENDING.value).values(**values)).rowcount == 1
            for message, values in outcomes]


def sent(now: datetime) -> dict:
    return {"status": OutboxStatus.SENT.value, "sent_at": now, "last_error": None}


def skipped(reason: str) -> dict:
    return {"status": OutboxStatus.SKIPPED.value, "last_error": reason[:1000]}


def failed(message: OutboxMessage, now: datetime, error: str, *, backoff_initial: timedelta,
           backoff_max: timedelta, max_attempts: int) -> dict:
    """Retry later with exponential backoff, or give up after the last attempt."""
    if message.attempts >= max_attempts:
        return {"status": OutboxStatus.FAILED.value, "last_error": error[:1000]}
    delay = min(backoff_initial * 2 ** (message.attempts - 1), backoff_max)
    return {"next_attempt_at": now + delay, "last_error": error[:1000]}


def released(message: OutboxMessage, now: datetime) -> dict:
    """A row claimed but not tried: due again at ``now``, its claim not counted as an
    attempt."""
    return {"next_attempt_at": now, "attempts": message.attempts - 1}


def mark_sent(engine: Engine, message: OutboxMessage, now: datetime) -> bool:
    return _finish(engine, message, **sent(now))


def mark_skipped(engine: Engine, message: OutboxMessage, reason: str) -> bool:
    return _finish(engine, message, **skipped(reason))


def mark_refused(engine: Engine, message: OutboxMessage, reason: str) -> bool:
    """A target the settings do not allow: failed at once, never retried."""
    return _finish(engine, message, status=OutboxStatus.FAILED.value, last_error=reason[:1000])


def list_messages(engine: Engine, *, subscription_id: str | None = None,
                  event_id: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if subscription_id is not None:
        query = query.where(OutboxMessage.subscription_id == subscription_id)
    if event_id is not None:
        query = query.where(OutboxMessage.event_id == event_id)
    with Session(engine) as session:
        return list(session.exec(query).all())
