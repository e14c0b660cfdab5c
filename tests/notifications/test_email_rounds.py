"""A dispatcher round sends its emails over one SMTP connection (a renewal burst paid a
connection, a host name lookup, EHLO, TLS and login per mail), against a real aiosmtpd server
that counts its connections: a refused recipient fails only its row, a server hanging up between
mails is reconnected to once and every mail arrives, an unreachable server fails the round's
rows alike, and a round that would outlast its lease leaves the rest for the next round."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from config.settings import NotificationSettings
from domain.requests import Cancel, Reactivate
from notifications import outbox
from notifications.dispatcher import Dispatcher
from notifications.models import OutboxStatus
from notifications.senders import local_hostname
from store.engine import get_engine
from tests.domain.helpers import at
from tests.notifications.conftest import Mailbox, free_port, serving
from tests.notifications.support import driver_for, emitted, make_tenant

ROUND = at(2026, 1, 21)


@dataclass
class CountingMailbox(Mailbox):
    """A Mailbox that also says which connection carried each mail (aiosmtpd makes one
    session per connection, EHLO is said once on each), answers 550 to the ``refused``
    recipients and, with ``per_connection``, hangs up after that many mails: at the next MAIL
    it closes without a word (``hang_up="drop"``, an idle timeout or a restart) or answers 421
    (a server limiting mails per connection)."""

    refused: set[str] = field(default_factory=set)
    per_connection: int = 0
    hang_up: str = "drop"
    ehlo_names: list[str] = field(default_factory=list)
    carriers: list[object] = field(default_factory=list)  # the session of each accepted mail

    def connections(self) -> int:
        return len(self.ehlo_names)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.ehlo_names.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        if self.per_connection and \
                sum(s is session for s in self.carriers) >= self.per_connection:
            if self.hang_up == "421":
                return "421 4.7.0 too many mails on this connection, closing"
            server.transport.close()
            return "421 4.3.2 closed"  # never arrives: the connection is gone
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address in self.refused:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd
        status = await super().handle_DATA(server, session, envelope)
        if status.startswith("250"):
            self.carriers.append(session)
        return status


@pytest.fixture
def counting_mailbox() -> Iterator[CountingMailbox]:
    with serving(CountingMailbox(port=free_port())) as box:
        yield box


def queue_emails(url: str, count: int) -> list[str]:
    """One cancellation confirmation each for ``count`` customers; their addresses."""
    addresses = [f"customer{i}@example.com" for i in range(count)]
    for i, address in enumerate(addresses):
        tenant = make_tenant(url, address)
        d = driver_for(tenant, at(2026, 1, 10), sub_id=f"sub_{i}")
        d.request(Cancel(mode="immediately"), at(2026, 1, 20))
        outbox.record(get_engine(url), emitted(d, tenant))
    return addresses


def dispatcher(url: str, port: int, **overrides) -> Dispatcher:
    settings = NotificationSettings(smtp_port=port, smtp_timeout_seconds=5,
                                    backoff_initial=timedelta(seconds=10), **overrides)
    return Dispatcher(get_engine(url), settings)


def rows(url: str) -> dict[str, outbox.OutboxMessage]:
    return {r.recipient: r for r in outbox.list_messages(get_engine(url))}


async def test_a_round_of_emails_goes_over_one_connection(db_url, counting_mailbox):
    """A stale ending notice in the round is still skipped, just before its turn."""
    addresses = queue_emails(db_url, 4)
    tenant = make_tenant(db_url, "back@example.com")
    d = driver_for(tenant, at(2026, 1, 10), sub_id="sub_back")
    d.request(Cancel(mode="at_period_end"), at(2026, 1, 20))
    d.request(Reactivate(), at(2026, 1, 20, 1))
    outbox.record(get_engine(db_url), emitted(d, tenant))
    everything = outbox.list_messages(get_engine(db_url))
    assert any(r.kind == "ending_notice" for r in everything)

    assert await dispatcher(db_url, counting_mailbox.port).run_once(
        at(2026, 2, 8)) == len(everything)
    assert counting_mailbox.ehlo_names == [local_hostname()]  # one connection, named once
    for row in outbox.list_messages(get_engine(db_url)):
        expected = OutboxStatus.SKIPPED if row.kind == "ending_notice" else OutboxStatus.SENT
        assert row.status == expected and row.attempts == 1, row
    assert len(counting_mailbox.messages) == len(everything) - 1
    assert set(addresses) <= {m["To"] for m in counting_mailbox.messages}


async def test_a_refused_recipient_fails_only_its_row(db_url, counting_mailbox):
    addresses = queue_emails(db_url, 5)
    counting_mailbox.refused = {addresses[2]}
    assert await dispatcher(db_url, counting_mailbox.port).run_once(ROUND) == 5

    found = rows(db_url)
    refused = found.pop(addresses[2])
    assert refused.status == OutboxStatus.PENDING and refused.attempts == 1  # retried later
    assert refused.last_error.startswith("SMTPRecipientsRefused") and "550" in refused.last_error
    assert refused.next_attempt_at == ROUND + timedelta(seconds=10)
    assert all(r.status == OutboxStatus.SENT for r in found.values())
    assert sorted(m["To"] for m in counting_mailbox.messages) == sorted(found)
    assert counting_mailbox.connections() == 1  # the refusal did not cost the connection


@pytest.mark.parametrize("hang_up", ["drop", "421"])
async def test_a_server_hanging_up_between_emails_is_reconnected_to(sqlite_url,
                                                                    counting_mailbox, hang_up):
    addresses = queue_emails(sqlite_url, 5)
    counting_mailbox.per_connection, counting_mailbox.hang_up = 2, hang_up
    assert await dispatcher(sqlite_url, counting_mailbox.port).run_once(ROUND) == 5

    assert all(r.status == OutboxStatus.SENT and r.attempts == 1
               for r in rows(sqlite_url).values())
    assert [m["To"] for m in counting_mailbox.messages] == addresses  # each once, in order
    assert counting_mailbox.connections() == 3  # 2 + 2 + 1


async def test_an_unreachable_server_fails_the_round_alike(sqlite_url):
    """The first mail finds no server; the others are not tried again: same server, same
    answer, and no timeout to wait out per mail."""
    queue_emails(sqlite_url, 3)
    assert await dispatcher(sqlite_url, free_port()).run_once(ROUND) == 3
    for row in rows(sqlite_url).values():
        assert row.status == OutboxStatus.PENDING and row.attempts == 1
        assert row.last_error.startswith("ConnectionRefusedError")
        assert row.next_attempt_at == ROUND + timedelta(seconds=10)


async def test_emails_the_lease_cannot_cover_wait_for_the_next_round(sqlite_url,
                                                                      counting_mailbox):
    """A lease just long enough for one send: each round sends one mail and gives the others
    back untried (due now, no attempt counted) rather than send them after the lease ran out,
    when another dispatcher may have claimed them too."""
    addresses = queue_emails(sqlite_url, 3)
    sender = dispatcher(sqlite_url, counting_mailbox.port)
    sender.lease = sender.one_email

    assert await sender.run_once(ROUND) == 3
    assert [m["To"] for m in counting_mailbox.messages] == addresses[:1]
    for address in addresses[1:]:
        row = rows(sqlite_url)[address]
        assert row.status == OutboxStatus.PENDING and row.attempts == 0
        assert row.next_attempt_at == ROUND and row.last_error is None
    assert await sender.run_once(ROUND) == 2
    assert await sender.run_once(ROUND) == 1
    assert [m["To"] for m in counting_mailbox.messages] == addresses
    assert all(r.status == OutboxStatus.SENT and r.attempts == 1
               for r in rows(sqlite_url).values())
