"""Email over TLS with a login, against real aiosmtpd servers using certificates made at test
time: STARTTLS (port 587 style, the server requires it) and implicit TLS (465 style) deliver;
a refused login, a server without STARTTLS and an untrusted certificate fail the message at once
with a code naming the setting to fix, instead of retrying for days, and nothing (neither the
password nor the mail) crosses the network in clear. A round of emails logs in once, and a
refused login fails the whole round on that one try."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr, ValidationError

from config.settings import NotificationSettings
from domain.requests import Cancel
from notifications import outbox
from notifications.dispatcher import Dispatcher
from notifications.models import OutboxStatus
from store.engine import get_engine
from tests.domain.helpers import at
from tests.notifications.conftest import free_port, serving
from tests.notifications.support import driver_for, emitted, make_tenant
from tests.support.tls_certs import Pki, make_pki

USER, PASSWORD = "billing@example.com", "correct horse"


def over_tls(server, session) -> bool:
    """After STARTTLS aiosmtpd sets session.ssl; with implicit TLS only the transport says."""
    return session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None


@dataclass
class Relay:
    """What the server saw: each accepted mail with whether it came over TLS, logged in."""

    port: int
    received: list[tuple[bool, bool]] = field(default_factory=list)
    logins: list[tuple[bytes, bool]] = field(default_factory=list)  # (user, over TLS)
    login_sessions: list[object] = field(default_factory=list)  # one aiosmtpd session each

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd
        self.received.append((over_tls(server, session), session.authenticated))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, data) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, over_tls(server, session)))
        self.login_sessions.append(session)
        ok = (data.login.decode(), data.password.decode()) == (USER, PASSWORD)
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("smtp-pki"), ["localhost", "127.0.0.1"])


def server_tls(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server.cert, pki.server.key)
    return ctx


def relay(mode: str, pki: Pki) -> Iterator[Relay]:
    box = Relay(port=free_port())
    kwargs: dict = {"authenticator": box.authenticate, "auth_require_tls": True}
    if mode == "starttls":
        kwargs |= {"tls_context": server_tls(pki), "require_starttls": True}
    elif mode == "tls":  # aiosmtpd's auth_require_tls looks for STARTTLS only
        kwargs |= {"ssl_context": server_tls(pki), "auth_require_tls": False}
    with serving(box, **kwargs):
        yield box


@pytest.fixture
def starttls_relay(pki) -> Iterator[Relay]:
    yield from relay("starttls", pki)


@pytest.fixture
def implicit_tls_relay(pki) -> Iterator[Relay]:
    yield from relay("tls", pki)


@pytest.fixture
def plain_relay(pki) -> Iterator[Relay]:
    yield from relay("plain", pki)


def queue_one(url: str, count: int = 1) -> None:
    """``count`` emails, one for each of as many customers."""
    for i in range(count):
        tenant = make_tenant(url, f"customer{i}@example.com")
        d = driver_for(tenant, at(2026, 1, 10), sub_id=f"sub_{i}")
        d.request(Cancel(mode="immediately"), at(2026, 1, 20))
        outbox.record(get_engine(url), emitted(d, tenant))


async def deliver_round(url: str, port: int, count: int,
                        **settings) -> list[outbox.OutboxMessage]:
    values = {"smtp_host": "localhost", "smtp_port": port, "smtp_timeout_seconds": 5,
              "smtp_username": USER, "smtp_password": SecretStr(PASSWORD),
              "backoff_initial": timedelta(seconds=10), **settings}
    sender = Dispatcher(get_engine(url), NotificationSettings(**values))
    assert await sender.run_once(at(2026, 1, 21)) == count
    return outbox.list_messages(get_engine(url))


async def deliver(url: str, port: int, **settings) -> outbox.OutboxMessage:
    (row,) = await deliver_round(url, port, 1, **settings)
    return row


@pytest.mark.parametrize("security, relay_fixture", [("starttls", "starttls_relay"),
                                                     ("tls", "implicit_tls_relay")])
async def test_tls_then_login_delivers(sqlite_url, pki, request, security, relay_fixture):
    box = request.getfixturevalue(relay_fixture)
    queue_one(sqlite_url)
    row = await deliver(sqlite_url, box.port, smtp_security=security, smtp_ca_file=pki.ca)
    assert row.status == OutboxStatus.SENT, row.last_error
    assert box.received == [(True, True)]
    assert box.logins == [(USER.encode(), True)]


async def test_a_round_of_emails_logs_in_once(sqlite_url, starttls_relay, pki):
    queue_one(sqlite_url, 3)
    found = await deliver_round(sqlite_url, starttls_relay.port, 3, smtp_security="starttls",
                                smtp_ca_file=pki.ca)
    assert all(row.status == OutboxStatus.SENT for row in found), found
    assert starttls_relay.received == [(True, True)] * 3
    assert starttls_relay.logins == [(USER.encode(), True)]


async def test_a_refused_login_fails_the_whole_round_on_one_try(sqlite_url, starttls_relay,
                                                                pki):
    """Every email of the round needs that login: one connection tries it, all fail for
    good (the same classification each would have got alone)."""
    queue_one(sqlite_url, 3)
    found = await deliver_round(sqlite_url, starttls_relay.port, 3, smtp_security="starttls",
                                smtp_ca_file=pki.ca, smtp_password=SecretStr("wrong"))
    for row in found:
        assert row.status == OutboxStatus.FAILED and row.attempts == 1
        assert row.last_error.startswith("smtp_auth_rejected:")
    assert starttls_relay.received == []
    sessions = starttls_relay.login_sessions
    assert sessions and all(s is sessions[0] for s in sessions)  # one connection tried


async def test_a_refused_login_fails_the_message_at_once(sqlite_url, starttls_relay, pki):
    queue_one(sqlite_url)
    row = await deliver(sqlite_url, starttls_relay.port, smtp_security="starttls",
                        smtp_ca_file=pki.ca, smtp_password=SecretStr("wrong"))
    assert row.status == OutboxStatus.FAILED and row.attempts == 1  # not 20 attempts over days
    assert row.last_error.startswith("smtp_auth_rejected:") and "535" in row.last_error
    assert "wrong" not in row.last_error
    assert starttls_relay.received == []
    # smtplib tries each mechanism the server offers (PLAIN, LOGIN), each over TLS
    assert starttls_relay.logins and set(starttls_relay.logins) == {(USER.encode(), True)}


async def test_no_starttls_offered_means_nothing_is_sent_in_clear(sqlite_url, plain_relay, pki):
    queue_one(sqlite_url)
    row = await deliver(sqlite_url, plain_relay.port, smtp_security="starttls",
                        smtp_ca_file=pki.ca)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error.startswith("starttls_unavailable:")
    assert plain_relay.received == [] and plain_relay.logins == []  # no password, no mail


async def test_an_untrusted_certificate_is_refused(sqlite_url, starttls_relay, tmp_path):
    queue_one(sqlite_url)
    stranger = make_pki(tmp_path / "other", ["localhost"])  # the client trusts another CA
    row = await deliver(sqlite_url, starttls_relay.port, smtp_security="starttls",
                        smtp_ca_file=stranger.ca)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error.startswith("tls_certificate_rejected:")
    assert starttls_relay.received == [] and starttls_relay.logins == []


def test_a_login_without_tls_is_a_settings_error():
    with pytest.raises(ValidationError, match="in clear"):
        NotificationSettings(smtp_username=USER, smtp_password=SecretStr(PASSWORD))
    assert NotificationSettings(smtp_username="", smtp_password="").smtp_username is None


def test_the_ca_file_setting_is_a_path(pki):
    assert NotificationSettings(smtp_ca_file=str(pki.ca)).smtp_ca_file == Path(pki.ca)
