"""Through the HTTP API and the real workflow: webhook endpoints are managed by owners and
billing admins (secret shown once), and a cancel request ends up as a confirmation email with
the exact end date and as signed webhooks at the organization's endpoint (D14, D8); dunning
mails each failed payment and the automatic cancel (D9)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest

from config.settings import NotificationSettings
from notifications import outbox, signing
from notifications.dispatcher import Dispatcher
from store.engine import get_engine
from tests.api.conftest import api, http, org, other_org, settings  # noqa: F401
from tests.api.helpers import (
    assert_problem,
    create_customer,
    create_subscription,
    dt,
    get_subscription,
    settle,
)
from tests.fakes_stripe import CARD_DECLINED

pytestmark = pytest.mark.temporal


async def test_webhook_endpoints_crud_and_roles(http, org, other_org):  # noqa: F811
    r = await http.post("/v1/webhook_endpoints", json={"url": "https://example.com/h"},
                        headers=org.member)
    assert_problem(r, 403, code="role_not_allowed")
    r = await http.post("/v1/webhook_endpoints", json={"url": "ftp://example.com/h"},
                        headers=org.owner)
    body = assert_problem(r, 422)
    assert body["errors"][0]["field"] == "url"

    r = await http.post("/v1/webhook_endpoints", json={"url": "https://example.com/h",
                                                       "description": "sync"},
                        headers=org.billing_admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["organization"] == org.id
    assert created["object"] == "webhook_endpoint" and created["id"].startswith("we_")

    listed = (await http.get("/v1/webhook_endpoints", headers=org.owner)).json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]
    assert "secret" not in listed["data"][0]  # shown once
    got = await http.get(f"/v1/webhook_endpoints/{created['id']}", headers=org.owner)
    assert got.status_code == 200 and "secret" not in got.json()
    assert (await http.get("/v1/webhook_endpoints", headers=other_org.owner)).json()["data"] == []
    r = await http.delete(f"/v1/webhook_endpoints/{created['id']}", headers=other_org.owner)
    assert_problem(r, 404, code="webhook_endpoint_not_found")

    r = await http.delete(f"/v1/webhook_endpoints/{created['id']}", headers=org.owner)
    assert r.status_code == 200 and r.json()["deleted"] is True
    r = await http.get(f"/v1/webhook_endpoints/{created['id']}", headers=org.owner)
    assert_problem(r, 404)


async def test_cancel_request_mails_the_exact_date_and_signs_webhooks(
        api, env, org, settings, mailbox, receiver):  # noqa: F811
    r = await api.post("/v1/webhook_endpoints", json={"url": receiver.url}, headers=org.owner)
    secret = r.json()["secret"]
    customer = await create_customer(api, org, email="grace@example.com")
    sub = await create_subscription(api, org, customer["id"])
    r = await api.post(f"/v1/subscriptions/{sub['id']}/cancel", json={"mode": "at_period_end"},
                       headers=org.billing_admin)
    assert r.status_code == 200, r.text
    ends = datetime.fromisoformat(r.json()["cancel_at"].replace("Z", "+00:00"))
    engine = get_engine(settings.database_url)

    async def queued():
        rows = outbox.list_messages(engine, subscription_id=sub["id"])
        return rows if any(m.kind == "cancel_confirmation" for m in rows) else None

    await settle(queued)
    dispatcher = Dispatcher(engine, NotificationSettings(smtp_port=mailbox.port,
                                                  webhook_allow_private_targets=True))
    await dispatcher.run_once(await env.get_current_time())

    # The ending notice waits until 3 days before the end; the first payment's receipt went.
    assert sorted(m["X-Notification-Kind"] for m in mailbox.messages) == [
        "cancel_confirmation", "payment_receipt"]
    (mail,) = mailbox.by_kind("cancel_confirmation")
    assert mail["To"] == "grace@example.com"
    assert mail["Subject"] == f"Your subscription ends on {ends:%B %-d, %Y}"
    assert f"until {ends:%B %-d, %Y at %H:%M:%S} UTC" in mailbox.text(mail)
    # Like Stripe's, deliveries may arrive in any order: receivers order by event id/created.
    r = await api.get(f"/v1/subscriptions/{sub['id']}/events", headers=org.member)
    recorded = {e["id"]: e for e in r.json()["data"]}
    assert {e["id"]: e for e in receiver.events()} == recorded  # the same shape as the API's
    assert "customer.subscription.updated" in {e["type"] for e in recorded.values()}
    for headers, body in receiver.deliveries:
        assert signing.verify(headers[signing.HEADER], body, secret, now=int(time.time()))


async def test_dunning_mails_each_failed_payment_then_the_automatic_cancel(
        api, env, org, settings, mailbox):  # noqa: F811
    customer = await create_customer(api, org, email="lin@example.com")
    sub = await create_subscription(api, org, customer["id"])
    r = await api.post(f"/v1/customers/{customer['id']}/payment_method",
                       json={"card_number": CARD_DECLINED}, headers=org.owner)
    assert r.status_code == 200, r.text
    # D9: the renewal and its three retries (3, 5, 7 days later) fail, then it is cancelled.
    end = dt(sub["current_period_end"])
    await env.sleep(end - await env.get_current_time() + timedelta(days=16))

    async def canceled():
        current = await get_subscription(api, org, sub["id"])
        return current if current["status"] == "canceled" else None

    await settle(canceled)
    engine = get_engine(settings.database_url)

    async def queued():
        rows = outbox.list_messages(engine, subscription_id=sub["id"])
        return rows if any(m.kind == "auto_cancel" for m in rows) else None

    await settle(queued)
    await Dispatcher(engine, NotificationSettings(smtp_port=mailbox.port,
                                                  webhook_allow_private_targets=True)).run_once(
        await env.get_current_time())
    kinds = sorted(m["X-Notification-Kind"] for m in mailbox.messages)
    assert kinds == ["auto_cancel"] + ["payment_failed"] * 4 + ["payment_receipt"]
    assert {m["To"] for m in mailbox.messages} == {"lin@example.com"}
    (auto,) = mailbox.by_kind("auto_cancel")
    assert "could not collect the payment" in mailbox.text(auto)
