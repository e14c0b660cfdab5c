"""Emails go out through a real SMTP server (aiosmtpd): the exact end date (D14), at least once
with backoff after SMTP failures but never twice, and a stale ending notice is skipped."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from config.settings import NotificationSettings
from domain.requests import Cancel, Reactivate
from notifications import outbox
from notifications.dispatcher import Dispatcher
from notifications.models import OutboxStatus
from notifications.senders import message_id
from store.engine import get_engine
from tests.domain.helpers import at
from tests.notifications.support import driver_for, emitted, make_tenant


def dispatcher(url: str, port: int, **overrides) -> Dispatcher:
    settings = NotificationSettings(smtp_port=port, smtp_timeout_seconds=5,
                                    backoff_initial=timedelta(seconds=10), **overrides)
    return Dispatcher(get_engine(url), settings)


def record(url, tenant, driver, mark=0):
    for event in emitted(driver, tenant, mark):
        outbox.record(get_engine(url), [event])


async def test_cancel_confirmation_states_the_exact_end_date_then_the_notice_comes(db_url,
                                                                                   mailbox):
    tenant = make_tenant(db_url)
    d = driver_for(tenant, at(2026, 1, 10, 9, 30))
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 20))
    record(db_url, tenant, d)
    sender = dispatcher(db_url, mailbox.port)

    assert await sender.run_once(at(2026, 1, 20, 0, 0, 5)) == 1  # the notice is not due yet
    (mail,) = mailbox.messages
    assert mail["To"] == tenant.email
    assert mail["Subject"] == "Your subscription ends on February 10, 2026"
    assert "until February 10, 2026 at 09:30:00 UTC" in mailbox.text(mail)
    (row,) = [r for r in outbox.list_messages(get_engine(db_url))
              if r.kind == "cancel_confirmation"]
    assert row.status == OutboxStatus.SENT and mail["Message-ID"] == message_id(row.dedupe_key)

    assert await sender.run_once(at(2026, 2, 7, 9, 29)) == 0
    assert await sender.run_once(at(2026, 2, 7, 9, 30)) == 1
    (notice,) = mailbox.by_kind("ending_notice")
    assert "ends on February 10, 2026 at 09:30:00 UTC" in mailbox.text(notice)


async def test_reactivated_before_the_notice_skips_it(db_url, mailbox):
    tenant = make_tenant(db_url)
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 20))
    d.request(Reactivate(), at(2026, 1, 25))
    record(db_url, tenant, d)
    sender = dispatcher(db_url, mailbox.port)
    await sender.run_once(at(2026, 1, 25))
    await sender.run_once(at(2026, 2, 8))
    assert [m["X-Notification-Kind"] for m in mailbox.messages] == ["cancel_confirmation"]
    (notice,) = [r for r in outbox.list_messages(get_engine(db_url)) if r.kind == "ending_notice"]
    assert notice.status == OutboxStatus.SKIPPED


async def test_smtp_failures_back_off_then_the_mail_is_sent_exactly_once(db_url, mailbox):
    tenant = make_tenant(db_url)
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="immediately"), at(2026, 1, 20))
    record(db_url, tenant, d)
    sender = dispatcher(db_url, mailbox.port)
    engine = get_engine(db_url)
    mailbox.fail = 2
    t0 = at(2026, 1, 20, 0, 0, 1)

    assert await sender.run_once(t0) == 1
    (row,) = outbox.list_messages(engine)
    assert row.status == OutboxStatus.PENDING and row.attempts == 1
    assert "451" in row.last_error and row.next_attempt_at == t0 + timedelta(seconds=10)
    assert await sender.run_once(t0 + timedelta(seconds=9)) == 0  # backing off
    assert await sender.run_once(t0 + timedelta(seconds=10)) == 1  # fails again: 20 s now
    assert await sender.run_once(t0 + timedelta(seconds=29)) == 0
    assert await sender.run_once(t0 + timedelta(seconds=30)) == 1  # the server recovered
    assert await sender.run_once(t0 + timedelta(days=1)) == 0
    (row,) = outbox.list_messages(engine)
    assert row.status == OutboxStatus.SENT and row.attempts == 3
    assert len(mailbox.messages) == 1


async def test_unreachable_server_is_retried_then_given_up_after_max_attempts(sqlite_url):
    tenant = make_tenant(sqlite_url)
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="immediately"), at(2026, 1, 20))
    record(sqlite_url, tenant, d)
    from tests.notifications.conftest import free_port
    sender = dispatcher(sqlite_url, free_port(), max_attempts=2)
    await sender.run_once(at(2026, 1, 21))
    (row,) = outbox.list_messages(get_engine(sqlite_url))
    assert row.status == OutboxStatus.PENDING and row.attempts == 1  # kept for a retry
    await sender.run_once(at(2026, 1, 22))
    (row,) = outbox.list_messages(get_engine(sqlite_url))
    assert row.status == OutboxStatus.FAILED and row.attempts == 2
    assert "Connection" in row.last_error or "refused" in row.last_error


async def test_two_dispatchers_at_once_never_send_a_mail_twice(db_url, mailbox):
    postgres_url = db_url  # SKIP LOCKED on PostgreSQL, the conditional claim on SQLite
    tenant = make_tenant(postgres_url)
    subscriptions = 24
    for i in range(subscriptions):
        d = driver_for(tenant, at(2026, 1, 10), sub_id=f"sub_{i:03d}")
        d.request(Cancel(mode="immediately"), at(2026, 1, 20))
        record(postgres_url, tenant, d)
    a = dispatcher(postgres_url, mailbox.port, batch_size=2)
    b = dispatcher(postgres_url, mailbox.port, batch_size=2)
    now = at(2026, 1, 21)

    def pending() -> bool:
        return any(r.status == OutboxStatus.PENDING
                   for r in outbox.list_messages(get_engine(postgres_url)))

    async def drain(sender: Dispatcher) -> int:
        """Both keep claiming until nothing is left (losing a race claims 0 this round)."""
        claimed = 0
        for _ in range(500):  # bounded: a failing send would back off past ``now``
            if not await asyncio.to_thread(pending):
                break
            claimed += await sender.run_once(now)
        return claimed

    claimed_a, claimed_b = await asyncio.gather(drain(a), drain(b))
    assert claimed_a + claimed_b == subscriptions
    assert claimed_a > 0 and claimed_b > 0, "both dispatchers took part"
    ids = [m["Message-ID"] for m in mailbox.messages]
    assert len(ids) == subscriptions and len(set(ids)) == subscriptions
    assert {m["X-Subscription-Id"] for m in mailbox.messages} == {
        f"sub_{i:03d}" for i in range(subscriptions)}


async def test_the_worker_loop_delivers_until_stopped(sqlite_url, mailbox):
    """What workers.main runs beside the Temporal worker: poll, deliver, stop on request."""
    from tests.api.helpers import settle
    tenant = make_tenant(sqlite_url)
    d = driver_for(tenant, at(2026, 1, 10))
    d.request(Cancel(mode="immediately"), at(2026, 1, 20))
    record(sqlite_url, tenant, d)
    stop = asyncio.Event()
    loop = asyncio.create_task(dispatcher(sqlite_url, mailbox.port,
                                          poll_interval_seconds=0.05).run(stop))

    async def delivered():
        return mailbox.messages

    await settle(delivered)
    stop.set()
    await loop
    assert len(mailbox.messages) == 1
