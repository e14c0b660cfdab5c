"""Outbound webhooks (D8): signed like Stripe's, retried with backoff after a 500, delivered
with the event id so receivers de-duplicate; a deleted endpoint gets nothing more."""

from __future__ import annotations

import time
from datetime import timedelta

from config.settings import NotificationSettings
from domain.requests import Cancel
from notifications import outbox, signing
from notifications.dispatcher import Dispatcher
from notifications.endpoints import create_endpoint, delete_endpoint
from notifications.models import OutboxStatus
from store.engine import get_engine
from tests.domain.helpers import at
from tests.notifications.support import driver_for, emitted, make_tenant


def dispatcher(url: str) -> Dispatcher:
    return Dispatcher(get_engine(url), NotificationSettings(
        smtp_port=9, smtp_timeout_seconds=1, webhook_timeout_seconds=5,
        backoff_initial=timedelta(seconds=30), webhook_allow_private_targets=True))


async def test_every_event_is_delivered_signed_after_a_500(db_url, receiver):
    engine = get_engine(db_url)
    tenant = make_tenant(db_url, email="hooks@example.com")
    endpoint = create_endpoint(engine, tenant.organization_id, receiver.url)
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="immediately"), at(2026, 1, 20))
    events = emitted(d, tenant)
    for event in events:
        outbox.record(engine, [event])
    hooks = [r for r in outbox.list_messages(engine) if r.channel == "webhook"]
    assert len(hooks) == len(events) >= 3
    receiver.statuses = [500]  # the first delivery fails
    sender = dispatcher(db_url)
    t0 = at(2026, 1, 20, 0, 0, 1)

    await sender.run_once(t0)
    assert len(receiver.deliveries) == len(events) - 1
    (failed,) = [r for r in outbox.list_messages(engine)
                 if r.channel == "webhook" and r.status == OutboxStatus.PENDING]
    assert failed.last_error == "RuntimeError: webhook answered HTTP 500"
    assert failed.next_attempt_at == t0 + timedelta(seconds=30)
    assert await sender.run_once(t0 + timedelta(seconds=29)) == 0
    await sender.run_once(t0 + timedelta(seconds=30))
    assert sorted(e["id"] for e in receiver.events()) == sorted(e.id for e in events)

    for headers, body in receiver.deliveries:
        event = signing_checked(headers, body, endpoint.secret)
        assert headers[signing.EVENT_ID_HEADER] == event["id"]
        assert event["object"] == "event"
        assert event["data"]["object"]["organization"] == tenant.organization_id
    deleted = [e for e in receiver.events() if e["type"] == "customer.subscription.deleted"]
    assert deleted[0]["request"]["kind"] == "customer"  # D8: requested, and by whom
    assert all(r.status == OutboxStatus.SENT for r in outbox.list_messages(engine)
               if r.channel == "webhook")


def signing_checked(headers: dict[str, str], body: bytes, secret: str) -> dict:
    import json
    value = headers[signing.HEADER]
    now = int(time.time())
    assert signing.verify(value, body, secret, now=now)
    assert not signing.verify(value, body, "whsec_wrong", now=now)
    assert not signing.verify(value, body + b" ", secret, now=now)
    assert not signing.verify(value, body, secret, now=now + 301)  # a replay, too late
    return json.loads(body)


async def test_deleted_endpoint_gets_nothing_more(sqlite_url, receiver):
    engine = get_engine(sqlite_url)
    tenant = make_tenant(sqlite_url)
    endpoint = create_endpoint(engine, tenant.organization_id, receiver.url)
    d = driver_for(tenant, at(2026, 1, 10))
    for event in emitted(d, tenant):
        outbox.record(engine, [event])
    delete_endpoint(engine, endpoint.id)
    await dispatcher(sqlite_url).run_once(at(2026, 1, 11))
    assert receiver.deliveries == []
    assert {r.status for r in outbox.list_messages(engine)} == {OutboxStatus.SKIPPED}


def test_signature_matches_stripes_scheme():
    """The documented recipe, computed independently: hex HMAC-SHA256 of "<t>.<body>"."""
    import hashlib
    import hmac
    body, secret, t = b'{"id":"evt_1"}', "whsec_x", 1700000000
    expected = hmac.new(b"whsec_x", b'1700000000.{"id":"evt_1"}', hashlib.sha256).hexdigest()
    assert signing.header(secret, t, body) == f"t={t},v1={expected}"
    assert signing.verify(f"t={t},v1=00,v1={expected}", body, secret, now=t + 10)
    assert not signing.verify(f"v1={expected}", body, secret, now=t)
