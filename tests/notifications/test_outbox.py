"""The outbox is written in the event's transaction, once per event, and leased safely."""

from __future__ import annotations

from datetime import timedelta


from domain.requests import Cancel
from notifications import outbox
from notifications.endpoints import create_endpoint, delete_endpoint, list_endpoints
from notifications.models import OutboxMessage, OutboxStatus, WebhookEndpoint
from store.engine import get_engine
from tests.domain.helpers import at
from tests.notifications.support import driver_for, emitted, make_tenant

TABLES = {OutboxMessage.__tablename__, WebhookEndpoint.__tablename__}


def _table(diff) -> str | None:
    diff = diff[0] if isinstance(diff, list) else diff
    kind, *rest = diff
    if kind.endswith("_table"):
        return rest[0].name
    if kind.endswith(("_index", "_constraint")):
        return rest[0].table.name
    if kind.startswith(("add_column", "remove_column", "modify_")):
        return rest[1]
    return None


def test_events_queue_their_messages_once_even_when_recorded_twice(db_url):
    engine = get_engine(db_url)
    tenant = make_tenant(db_url)
    endpoint = create_endpoint(engine, tenant.organization_id, "http://127.0.0.1:9/hook")
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 20))
    evs = emitted(d, tenant)
    for event in evs + evs:  # a retried record_event activity
        outbox.record(engine, [event])
    rows = outbox.list_messages(engine, subscription_id="sub_1")
    webhooks = [r for r in rows if r.channel == "webhook"]
    assert sorted(r.event_id for r in webhooks) == sorted(e.id for e in evs)
    assert {r.recipient for r in webhooks} == {endpoint.id}
    mails = {r.kind: r for r in rows if r.channel == "email"}
    assert set(mails) == {"cancel_confirmation", "ending_notice"}
    assert mails["cancel_confirmation"].recipient == tenant.email
    assert mails["ending_notice"].next_attempt_at == at(2026, 2, 7)  # 3 days before the end
    assert all(r.status == OutboxStatus.PENDING and r.attempts == 0 for r in rows)
    assert len({r.dedupe_key for r in rows}) == len(rows)


def test_claim_leases_due_rows_once_and_backoff_doubles(db_url):
    engine = get_engine(db_url)
    tenant = make_tenant(db_url)
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="immediately"), at(2026, 1, 20))
    for event in emitted(d, tenant):
        outbox.record(engine, [event])
    lease = timedelta(minutes=2)
    now = at(2026, 1, 20, 0, 0, 1)
    (row,) = outbox.claim(engine, now, limit=10, lease=lease)
    assert row.kind == "cancel_confirmation" and row.attempts == 1
    assert outbox.claim(engine, now, limit=10, lease=lease) == []  # leased
    args = {"backoff_initial": timedelta(seconds=10), "backoff_max": timedelta(seconds=25),
            "max_attempts": 3}

    def fail(row) -> bool:
        return outbox.finish_many(engine, [(row, outbox.failed(row, now, "boom", **args))])[0]

    assert fail(row)
    assert outbox.claim(engine, now + timedelta(seconds=9), limit=10, lease=lease) == []
    (row,) = outbox.claim(engine, now + timedelta(seconds=10), limit=10, lease=lease)
    assert row.attempts == 2 and row.last_error == "boom"
    assert fail(row)
    assert outbox.claim(engine, now + timedelta(seconds=19), limit=10, lease=lease) == []
    (row,) = outbox.claim(engine, now + timedelta(seconds=20), limit=10, lease=lease)
    stale = row.model_copy(update={"claim_token": "someone-else"})
    assert not outbox.mark_sent(engine, stale, now)  # only the lease holder finishes a row
    assert fail(row)  # third attempt: give up
    (final,) = outbox.list_messages(engine, subscription_id="sub_1")
    assert final.status == OutboxStatus.FAILED and final.attempts == 3


def test_endpoints_belong_to_their_organization(db_url):
    engine = get_engine(db_url)
    a, b = make_tenant(db_url), make_tenant(db_url)
    ea = create_endpoint(engine, a.organization_id, "https://a.example/hook")
    assert ea.secret.startswith("whsec_")
    assert [e.id for e in list_endpoints(engine, a.organization_id)] == [ea.id]
    assert list_endpoints(engine, b.organization_id) == []
    assert delete_endpoint(engine, ea.id) and not delete_endpoint(engine, ea.id)
