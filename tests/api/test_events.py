"""Issue 15 through the HTTP API: GET /v1/events lists the organization's events with filters
(type or type prefix, subscription, customer, created range) and a cursor, to any role and to
no other organization; POST /v1/webhook_endpoints/{id}/replay resends a range to an endpoint
once per Idempotency-Key, on the worker's delivery path; a dead delivery is listed and retried
by hand. Events are stored as the workflow's activities store them (outbox.record); no
subscription runs, so no worker is needed."""

from __future__ import annotations

from collections import Counter

import pytest

from accounts.customers import create_customer
from config.settings import NotificationSettings, Settings
from domain.requests import Cancel, Reactivate
from notifications import outbox
from notifications.dispatcher import Dispatcher
from store.engine import get_engine
from tests.api.helpers import Org, assert_problem, dt, iso
from tests.domain.helpers import Driver, at
from tests.notifications.conftest import receiver  # noqa: F401 - a real HTTP receiver
from tests.notifications.support import Tenant, emitted
from tests.notifications.test_webhook_dispatch import signing_checked

pytestmark = pytest.mark.temporal


def _events(settings: Settings, org: Org, sub_id: str, start, customer: str | None = None):
    """A subscription of ``org`` created at ``start``, cancelled at the period end five days
    later, reactivated the next day and cancelled at once ten days after the start."""
    engine = get_engine(settings.database_url)
    customer = customer or create_customer(engine, org.id, "ada@example.com", "Ada").id
    tenant = Tenant(org.id, customer, "ada@example.com")
    d = Driver.create(start, sub_id=sub_id, customer_id=customer)
    d.request(Cancel(mode="at_period_end"), at(start.year, start.month, start.day + 5))
    d.request(Reactivate(), at(start.year, start.month, start.day + 6))
    d.request(Cancel(mode="immediately"), at(start.year, start.month, start.day + 10))
    events = emitted(d, tenant)
    outbox.record(engine, events)
    return events


async def _list(http, headers, **params) -> list[dict]:
    """Every page, following starting_after (pages of 2)."""
    items, after = [], None
    while True:
        query = {**params, "limit": 2, **({"starting_after": after} if after else {})}
        r = await http.get("/v1/events", params=query, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["data"]
        if not page["has_more"]:
            return items
        after = page["data"][-1]["id"]


async def test_list_events_filters_and_pages(http, settings, org, other_org):
    a = _events(settings, org, "sub_a", at(2026, 1, 1))
    b = _events(settings, org, "sub_b", at(2026, 1, 3))
    theirs = _events(settings, other_org, "sub_x", at(2026, 1, 2))
    ours = sorted(a + b, key=lambda e: (e.created, e.id))

    listed = await _list(http, org.member)  # any role reads events
    assert [e["id"] for e in listed] == [e.id for e in ours]  # time order, no repeats
    assert listed[0]["object"] == "event" and listed[0]["data"]["object"]["id"] == "sub_a"
    assert {e["id"] for e in await _list(http, other_org.owner)} == {e.id for e in theirs}

    deleted = await _list(http, org.owner, type="customer.subscription.deleted")
    assert [e["id"] for e in deleted] == [e.id for e in ours
                                          if e.type == "customer.subscription.deleted"]
    prefix = await _list(http, org.owner, type="invoice.*")
    assert prefix and [e["id"] for e in prefix] == [e.id for e in ours
                                                    if e.type.startswith("invoice.")]
    assert {e["data"]["object"]["id"] for e in await _list(
        http, org.owner, subscription="sub_b")} == {"sub_b"}
    customer = b[0].data["customer"]
    assert [e["id"] for e in await _list(http, org.owner, customer=customer)] == \
        [e.id for e in ours if e.data["customer"] == customer]
    gte, lt = at(2026, 1, 6), at(2026, 1, 11)
    ranged = await _list(http, org.owner, **{"created[gte]": iso(gte), "created[lt]": iso(lt)})
    assert [e["id"] for e in ranged] == [e.id for e in ours if gte <= e.created < lt]
    assert 0 < len(ranged) < len(ours)

    r = await http.get("/v1/events", params={"starting_after": theirs[0].id}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "starting_after"
    r = await http.get("/v1/events", params={"created[gte]": iso(lt), "created[lt]": iso(gte)},
                       headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "created[lt]"
    r = await http.get("/v1/events", params={"created[gte]": "2026-01-01T00:00:00"},
                       headers=org.owner)  # no offset: which instant?
    assert_problem(r, 422)
    r = await http.get("/v1/events", params={"type": "bogus type"}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "type"


def _dispatcher(settings: Settings, **extra) -> Dispatcher:
    return Dispatcher(get_engine(settings.database_url), NotificationSettings(
        smtp_port=9, smtp_timeout_seconds=1, webhook_allow_private_targets=True, **extra))


async def _drain(sender: Dispatcher, now) -> None:
    while await sender.run_once(now):
        pass


async def test_replay_once_per_idempotency_key_and_retry_a_dead_delivery(
        http, settings, org, other_org, receiver):  # noqa: F811
    r = await http.post("/v1/webhook_endpoints", json={"url": receiver.url}, headers=org.owner)
    endpoint, secret = r.json()["id"], r.json()["secret"]
    events = _events(settings, org, "sub_a", at(2026, 1, 1))
    now = at(2026, 2, 1)
    await _drain(_dispatcher(settings), now)
    assert len(receiver.deliveries) == len(events)
    receiver.deliveries.clear()

    path = f"/v1/webhook_endpoints/{endpoint}/replay"
    body = {"created": {"gte": "2026-01-05T00:00:00Z", "lt": "2026-01-12T00:00:00Z"}}
    wanted = Counter(e.id for e in events if at(2026, 1, 5) <= e.created < at(2026, 1, 12))
    r = await http.post(path, json=body, headers=org.member)
    assert_problem(r, 403, code="role_not_allowed")
    r = await http.post(path, json=body, headers=other_org.owner)
    assert_problem(r, 404, code="webhook_endpoint_not_found")
    r = await http.post(path, json={"created": {"gte": "2026-01-05T00:00:00Z",
                                                "lt": "2026-01-05T00:00:00Z"}},
                        headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "created.lt"
    r = await http.post(path, json={**body, "types": ["Not a type"]}, headers=org.owner)
    assert assert_problem(r, 422)["errors"][0]["field"] == "types"

    key = {**org.owner, "Idempotency-Key": "replay-1"}
    r = await http.post(path, json=body, headers=key)
    assert r.status_code == 202, r.text
    replay = r.json()
    assert replay["status"] == "pending" and replay["id"].startswith("wrp_")
    assert receiver.deliveries == []  # nothing is sent by the request itself
    await _drain(_dispatcher(settings), now)
    assert Counter(signing_checked(h, b, secret)["id"] for h, b in receiver.deliveries) == wanted

    r = await http.post(path, json=body, headers=key)  # the same request again
    assert r.status_code == 202 and r.json()["id"] == replay["id"]
    await _drain(_dispatcher(settings), now)
    assert len(receiver.deliveries) == sum(wanted.values())
    r = await http.get(f"/v1/webhook_endpoints/{endpoint}/replays/{replay['id']}",
                       headers=org.owner)
    got = r.json()
    assert (got["status"], got["events"]) == ("queued", sum(wanted.values()))
    assert got["deliveries"] == {"sent": sum(wanted.values()), "pending": 0, "failed": 0}
    r = await http.post(path, json={**body, "types": ["invoice.paid"]}, headers=key)
    assert_problem(r, 409, code="idempotency_key_reused")

    # A delivery that dies (one attempt allowed), listed, then retried by hand.
    receiver.statuses = [500]
    r = await http.post(path, json={"created": {"gte": "2026-01-11T00:00:00Z"}},
                        headers=org.owner)
    await _drain(_dispatcher(settings, max_attempts=1), now)
    r = await http.get(f"/v1/webhook_endpoints/{endpoint}/deliveries",
                       params={"status": "failed"}, headers=org.owner)
    (dead,) = r.json()["data"]
    assert dead["attempts"] == 1 and "HTTP 500" in dead["last_error"]
    assert dead["replay"] is not None and dead["event_type"] == "customer.subscription.deleted"
    retry = f"/v1/webhook_endpoints/{endpoint}/deliveries/{dead['id']}/retry"
    received = len(receiver.deliveries)
    assert_problem(await http.post(retry, headers=other_org.owner), 404)
    r = await http.post(retry, headers=org.billing_admin)
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    due = dt(r.json()["next_attempt_at"])  # now, on the API's clock
    await _drain(_dispatcher(settings), due)
    r = await http.get(f"/v1/webhook_endpoints/{endpoint}/deliveries",
                       params={"status": "failed"}, headers=org.owner)
    assert r.json()["data"] == []
    (headers, sent), = receiver.deliveries[received:]
    assert signing_checked(headers, sent, secret)["id"] == dead["event"]
    r = await http.post(retry, headers=org.owner)  # sent now: nothing to retry
    assert_problem(r, 409, code="delivery_not_dead")
