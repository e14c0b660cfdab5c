"""Webhook replay (issue 15): a replay request resends each event of its range to the endpoint
exactly once, with the original body and event id, signed with the endpoint's secret as
receivers verify it; the same Idempotency-Key resends nothing; two dispatchers queueing the
same replay at once still deliver each event once. Dead deliveries go back to the queue by hand
and are then delivered on the normal path."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest

from config.settings import NotificationSettings
from domain.requests import Cancel, Reactivate
from notifications import deliveries, outbox, signing
from notifications.dispatcher import Dispatcher
from notifications.endpoints import create_endpoint
from notifications.models import OutboxStatus, ReplayStatus
from notifications.replays import ReplayKeyReused, progress, request_replay
from store.engine import get_engine
from tests.domain.helpers import at
from tests.notifications.support import driver_for, emitted, make_tenant
from tests.notifications.test_webhook_dispatch import signing_checked


def dispatcher(url: str, **settings) -> Dispatcher:
    # webhook_allow_private_targets: the receiver is local (outbound target checks).
    return Dispatcher(get_engine(url), NotificationSettings(**{
        "smtp_port": 9, "smtp_timeout_seconds": 1, "webhook_timeout_seconds": 5,
        "replay_batch_size": 2, "webhook_allow_private_targets": True, **settings}))


async def drain(*senders: Dispatcher, now) -> None:
    """Run the dispatchers side by side until nothing is left to queue or send."""
    while sum(await asyncio.gather(*(s.run_once(now) for s in senders))):
        pass


NOW = at(2026, 2, 1)


@pytest.fixture
def world(db_url, receiver):
    """An organization with an endpoint and a subscription created on Jan 10, cancelled at
    the period end on Jan 15, reactivated on Jan 16 and cancelled at once on Jan 20, another organization with its own events on Jan 20, all delivered once."""
    engine = get_engine(db_url)
    tenant = make_tenant(db_url)
    endpoint = create_endpoint(engine, tenant.organization_id, receiver.url)
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 15))
    d.request(Reactivate(), at(2026, 1, 16))
    d.request(Cancel(mode="immediately"), at(2026, 1, 20))
    events = emitted(d, tenant)
    outbox.record(engine, events)
    other = make_tenant(db_url, email="bob@example.com")
    create_endpoint(engine, other.organization_id, receiver.url)
    outbox.record(engine, emitted(driver_for(other, at(2026, 1, 20), sub_id="sub_2"), other))
    asyncio.run(drain(dispatcher(db_url), now=NOW))
    originals = {body_id(b): b for _, b in receiver.deliveries}
    receiver.deliveries.clear()
    return engine, endpoint, events, originals


def body_id(body: bytes) -> str:
    import json
    return json.loads(body)["id"]


async def test_a_replay_resends_each_event_of_the_range_once_signed(db_url, receiver, world):
    engine, endpoint, events, originals = world
    gte, lt = at(2026, 1, 15), at(2026, 1, 21)
    in_range = [e.id for e in events if gte <= e.created < lt]
    assert 3 <= len(in_range) < len(events)  # the range leaves the Jan 10 events out

    replay, new = request_replay(engine, endpoint, created_gte=gte, created_lt=lt, types=[],
                                 idempotency_key="k1", now=NOW)
    assert new and replay.status == ReplayStatus.PENDING
    await drain(dispatcher(db_url), dispatcher(db_url), now=NOW)  # two dispatchers at once
    got = Counter(body_id(b) for _, b in receiver.deliveries)
    assert got == Counter(in_range)  # each event once, none of the other organization's
    for headers, body in receiver.deliveries:
        event = signing_checked(headers, body, endpoint.secret)  # the receivers' own check
        assert headers[signing.EVENT_ID_HEADER] == event["id"]
        assert body == originals[event["id"]]  # the original event, byte for byte
    assert progress(engine, replay.id).sent == len(in_range)

    again, new = request_replay(engine, endpoint, created_gte=gte, created_lt=lt, types=[],
                                idempotency_key="k1", now=NOW)
    assert (again.id, new) == (replay.id, False)
    await drain(dispatcher(db_url), now=NOW + timedelta(hours=1))
    assert len(receiver.deliveries) == len(in_range)  # the same key resent nothing
    with pytest.raises(ReplayKeyReused):
        request_replay(engine, endpoint, created_gte=gte, created_lt=NOW, types=[],
                       idempotency_key="k1", now=NOW)

    request_replay(engine, endpoint, created_gte=gte, created_lt=lt,
                   types=["customer.subscription.deleted"], idempotency_key="k2", now=NOW)
    await drain(dispatcher(db_url), now=NOW)
    second = [body_id(b) for _, b in receiver.deliveries[len(in_range):]]
    assert second == [e.id for e in events if e.type == "customer.subscription.deleted"]


async def test_a_dead_delivery_retried_by_hand_is_delivered(db_url, receiver):
    engine = get_engine(db_url)
    tenant = make_tenant(db_url)
    endpoint = create_endpoint(engine, tenant.organization_id, receiver.url)
    (event, *_) = emitted(driver_for(tenant, at(2026, 1, 10)), tenant)
    outbox.record(engine, [event])
    receiver.statuses = [500]
    await dispatcher(db_url, max_attempts=1).run_once(NOW)
    (dead,) = deliveries.list_deliveries(engine, endpoint_id=endpoint.id,
                                         status=deliveries.DEAD)
    assert dead.event_id == event.id and dead.last_error.endswith("HTTP 500")
    assert await dispatcher(db_url).run_once(NOW + timedelta(days=1)) == 0  # dead stays dead

    assert deliveries.retry_dead(engine, dead.id, NOW)
    assert not deliveries.retry_dead(engine, dead.id, NOW)  # queued already
    await dispatcher(db_url, max_attempts=1).run_once(NOW)
    (headers, body), = receiver.deliveries
    assert signing_checked(headers, body, endpoint.secret)["id"] == event.id
    assert deliveries.get_delivery(engine, dead.id).status == OutboxStatus.SENT
