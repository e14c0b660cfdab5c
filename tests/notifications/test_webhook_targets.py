"""Outbound webhooks go to public addresses only (notifications/targets.py): each refused class
fails the delivery for good with its reason, whether named literally, as localhost or through
DNS; the address checked is the one connected to (DNS that changes between check and use moves
nothing); redirects are not followed; production needs https. Registration refuses what it can
tell without DNS (422 on `url`)."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from ipaddress import ip_address

import httpx
import pytest

from accounts import keys
from api.app import create_app
from config.settings import NotificationSettings, Settings
from notifications import outbox
from notifications.dispatcher import Dispatcher
from notifications.endpoints import create_endpoint
from notifications.models import OutboxStatus
from notifications.targets import TargetRefused, address_class, system_resolver
from store.engine import get_engine
from tests.api.helpers import assert_problem
from tests.domain.helpers import at
from tests.notifications.conftest import Receiver, running_receiver
from tests.notifications.support import driver_for, emitted, make_tenant

NOW = at(2026, 1, 10, 0, 0, 1)


def dispatcher(url: str, *, resolver=system_resolver, https_only: bool = False,
               tls: ssl.SSLContext | None = None, **settings) -> Dispatcher:
    settings = {"webhook_timeout_seconds": 5, **settings}
    return Dispatcher(get_engine(url), NotificationSettings(
        smtp_port=9, smtp_timeout_seconds=1, backoff_initial=timedelta(seconds=1), **settings),
        https_only=https_only, resolver=resolver, tls=tls)


def queue_one(url: str, target: str) -> None:
    """One webhook delivery to ``target`` queued (the subscription's first event)."""
    engine = get_engine(url)
    tenant = make_tenant(url)
    create_endpoint(engine, tenant.organization_id, target)
    outbox.record(engine, emitted(driver_for(tenant, at(2026, 1, 10)), tenant)[:1])


def webhook_rows(url: str):
    return [r for r in outbox.list_messages(get_engine(url)) if r.channel == "webhook"]


@pytest.fixture
def local() -> Iterator[Receiver]:
    """A service inside the network: it must never receive a webhook."""
    with running_receiver("127.0.0.1") as state:
        yield state


def dns(answers: dict[str, list[str]], calls: list[str]):
    async def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[host]
    return resolve


@pytest.mark.parametrize("target,why", [
    ("http://127.0.0.1:{port}/hooks", "loopback"),
    ("http://10.0.0.1/hooks", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[::1]:{port}/hooks", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/hooks", "loopback"),
    ("http://localhost:{port}/hooks", "loopback"),
    ("http://internal.example:{port}/hooks", "loopback"),  # through DNS
    ("http://cgnat.example/hooks", "CGNAT"),
    ("http://ula.example/hooks", "private"),
])
async def test_each_refused_class_fails_for_good_with_its_reason(sqlite_url, local, target,
                                                                  why):
    calls: list[str] = []
    resolver = dns({"internal.example": ["127.0.0.1"], "cgnat.example": ["100.64.0.7"],
                    "ula.example": ["fd12:3456::1"]}, calls)
    queue_one(sqlite_url, target.format(port=local.port))
    sender = dispatcher(sqlite_url, resolver=resolver)

    await sender.run_once(NOW)
    (row,) = webhook_rows(sqlite_url)
    assert row.status == OutboxStatus.FAILED and row.attempts == 1
    assert row.last_error.startswith("refused target (private_target): ")
    assert why in row.last_error
    assert local.deliveries == []
    await sender.run_once(NOW + timedelta(days=1))  # not retried
    assert webhook_rows(sqlite_url)[0].attempts == 1 and local.deliveries == []


async def test_the_checked_address_is_the_one_connected_to(sqlite_url, local):
    """DNS answers an allowed address to the check, then the internal one: the delivery still
    goes to the checked address (pinned), and DNS is asked once."""
    with running_receiver("127.0.0.2", port=0) as public:
        with running_receiver("127.0.0.1", port=public.port) as internal:
            calls: list[str] = []
            answers = iter([["127.0.0.2"]])

            async def rebinding(host: str, port: int) -> list[str]:
                calls.append(host)
                return next(answers, ["127.0.0.1"])

            queue_one(sqlite_url, f"http://hooks.rebind.example:{public.port}/hooks")
            await dispatcher(sqlite_url, resolver=rebinding,
                             webhook_allowed_networks=["127.0.0.2/32"]).run_once(NOW)
            assert webhook_rows(sqlite_url)[0].status == OutboxStatus.SENT
            assert len(public.deliveries) == 1 and internal.deliveries == []
            headers, _ = public.deliveries[0]
            assert headers["Host"] == f"hooks.rebind.example:{public.port}"
            assert calls == ["hooks.rebind.example"]


async def test_a_name_with_any_refused_address_is_refused(sqlite_url, local):
    resolver = dns({"mixed.example": ["127.0.0.2", "127.0.0.1"]}, [])
    queue_one(sqlite_url, f"http://mixed.example:{local.port}/hooks")
    await dispatcher(sqlite_url, resolver=resolver,
                     webhook_allowed_networks=["127.0.0.2/32"]).run_once(NOW)
    (row,) = webhook_rows(sqlite_url)
    assert row.status == OutboxStatus.FAILED
    assert "mixed.example resolves to 127.0.0.1" in row.last_error


async def test_redirects_are_not_followed(sqlite_url, local):
    with running_receiver("127.0.0.2") as hook:
        hook.redirect_to = f"http://127.0.0.1:{local.port}/hooks"
        queue_one(sqlite_url, hook.url)
        await dispatcher(sqlite_url, webhook_allowed_networks=["127.0.0.2/32"]).run_once(NOW)
    (row,) = webhook_rows(sqlite_url)
    assert row.status == OutboxStatus.PENDING  # retried later, like any non-2xx answer
    assert row.last_error == ("RuntimeError: webhook answered HTTP 302 (redirects are not "
                              "followed)")
    assert local.deliveries == []


async def test_a_hanging_dns_lookup_ends_the_attempt_in_time(sqlite_url):
    async def hanging(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        return []

    queue_one(sqlite_url, "https://hooks.example.com/hooks")
    await asyncio.wait_for(dispatcher(sqlite_url, resolver=hanging,
                                      webhook_timeout_seconds=0.2).run_once(NOW), 5)
    (row,) = webhook_rows(sqlite_url)
    assert row.status == OutboxStatus.PENDING and row.last_error.startswith("TimeoutError")


async def test_production_posts_over_https_only(sqlite_url):
    calls: list[str] = []
    queue_one(sqlite_url, "http://hooks.example.com/hooks")
    await dispatcher(sqlite_url, https_only=True, resolver=dns({}, calls)).run_once(NOW)
    (row,) = webhook_rows(sqlite_url)
    assert row.status == OutboxStatus.FAILED
    assert row.last_error.startswith("refused target (https_required)")
    assert calls == []  # refused before any DNS


def test_address_classes():
    refused = ["127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
               "169.254.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1",
               "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254",
               "ff02::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "192.0.2.1"]
    for address in refused:
        assert address_class(ip_address(address)) is not None, address
    for address in ("93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"):
        assert address_class(ip_address(address)) is None, address
    assert address_class(ip_address("169.254.169.254")) == "the cloud metadata address"


def test_refusal_names_the_rule():
    from notifications.targets import check_url
    with pytest.raises(TargetRefused) as refused:
        check_url("http://127.0.0.1/x", NotificationSettings(), https_only=False)
    assert refused.value.rule == "private_target"
    allowed = NotificationSettings(webhook_allow_private_targets=True)
    assert check_url("http://127.0.0.1/x", allowed, https_only=False).host == "127.0.0.1"


@pytest.mark.parametrize("url,rule", [
    ("http://127.0.0.1:8080/hooks", "private_target"),
    ("http://10.0.0.1/hooks", "private_target"),
    ("http://169.254.169.254/latest/meta-data/", "private_target"),
    ("http://[::1]/hooks", "private_target"),
    ("http://[fd00::1]/hooks", "private_target"),
    ("http://localhost:8000/hooks", "private_target"),
    ("http://api.localhost/hooks", "private_target"),
])
async def test_registration_refuses_what_needs_no_dns(sqlite_url, localstripe_url, url, rule):
    async with _api(sqlite_url, localstripe_url) as (http, owner):
        r = await http.post("/v1/webhook_endpoints", json={"url": url}, headers=owner)
        body = assert_problem(r, 422, code=rule)
        assert body["errors"][0]["field"] == "url"
        r = await http.post("/v1/webhook_endpoints", json={"url": "http://hooks.example.com/h"},
                            headers=owner)
        assert r.status_code == 201, r.text  # http is fine in development


async def test_registration_in_production_needs_https(sqlite_url, localstripe_url):
    async with _api(sqlite_url, localstripe_url, environment="production",
                    stripe={"webhook_secret": "whsec_deployment_secret"}) as (http, owner):
        r = await http.post("/v1/webhook_endpoints", json={"url": "http://hooks.example.com/h"},
                            headers=owner)
        assert assert_problem(r, 422, code="https_required")["errors"][0]["field"] == "url"
        r = await http.post("/v1/webhook_endpoints",
                            json={"url": "https://hooks.example.com/h"}, headers=owner)
        assert r.status_code == 201, r.text


@asynccontextmanager
async def _api(sqlite_url: str, localstripe_url: str, **overrides):
    """The app (no Temporal needed for endpoints) with default notification settings."""
    from tests.fakes_stripe import stripe_settings
    stripe = stripe_settings(localstripe_url).model_copy(update=overrides.pop("stripe", {}))
    settings = Settings(database_url=sqlite_url, stripe=stripe, **overrides)
    engine = get_engine(sqlite_url)
    _, raw = keys.create_organization_with_owner(engine, "Hooks")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http, {"Authorization": f"Bearer {raw}"}


def _tls_pair(name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``name`` from a fresh CA, and a client context
    that trusts that CA only."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject: str, key, issuer: str, issuer_key, ca: bool, san: str | None = None):
        now = datetime.now(UTC)
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=1))
                   .not_valid_after(now + timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        if ca:
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = cert("test CA", ca_key, "test CA", ca_key, ca=True)
    leaf = cert(name, leaf_key, "test CA", ca_key, ca=False, san=name)
    pem = serialization.Encoding.PEM
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(leaf.public_bytes(pem))
        key_file.write_bytes(leaf_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client


@pytest.mark.parametrize("cert_name,delivered", [("hooks.tls.example", True),
                                                  ("other.example", False)])
async def test_https_to_the_pinned_address_verifies_the_hosts_certificate(
        sqlite_url, cert_name, delivered):
    """Connecting to the checked IP still verifies the certificate for the URL's host (SNI):
    a certificate for another name fails the delivery."""
    server, client = _tls_pair(cert_name)
    with running_receiver("127.0.0.2", tls=server) as hook:
        queue_one(sqlite_url, f"https://hooks.tls.example:{hook.port}/hooks")
        await dispatcher(sqlite_url, https_only=True, tls=client,
                         resolver=dns({"hooks.tls.example": ["127.0.0.2"]}, []),
                         webhook_allowed_networks=["127.0.0.2/32"]).run_once(NOW)
    (row,) = webhook_rows(sqlite_url)
    if delivered:
        assert row.status == OutboxStatus.SENT, row.last_error
        assert len(hook.deliveries) == 1
    else:
        assert row.status == OutboxStatus.PENDING and "CERTIFICATE_VERIFY_FAILED" in \
            row.last_error
        assert hook.deliveries == []
