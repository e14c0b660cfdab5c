"""Where outbound webhooks may go: public https addresses, checked when each one is sent.

An organization names the URL, the worker POSTs from inside the network: without a check that
is a blind SSRF (the metadata service, the database, Temporal). So every delivery resolves the
host once, refuses it if ANY address is not public (loopback, private, link-local, CGNAT,
multicast, reserved, unspecified, the metadata address; IPv4-mapped IPv6 is judged by its IPv4)
unless a setting allows it, and then connects to that checked address (the URL's host goes in
the Host header and as TLS SNI, so the certificate is still verified for the name): a DNS
answer that changes between check and use cannot move the request elsewhere. Redirects are
not followed, proxies from the environment are not used, and DNS and the POST each have the
webhook timeout.
Registration runs the checks that need no DNS (scheme, literal addresses, localhost names).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address

import httpx

from config.settings import NotificationSettings

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> the addresses a connection may use (tests inject their own DNS)."""

_METADATA = {ip_address("169.254.169.254"), ip_address("fd00:ec2::254")}
_SHARED = IPv4Network("100.64.0.0/10")  # CGNAT, RFC 6598


class TargetRefused(Exception):
    """The target is not allowed: a delivery to it fails for good (not retried)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule, self.message = rule, message


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def address_class(ip: IPv4Address | IPv6Address) -> str | None:
    """Why ``ip`` is not a public address (None if it is)."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA:
        return "the cloud metadata address"
    for name, matches in (("loopback", ip.is_loopback), ("link-local", ip.is_link_local),
                          ("shared (CGNAT)", isinstance(ip, IPv4Address) and ip in _SHARED),
                          ("multicast", ip.is_multicast), ("private", ip.is_private),
                          ("unspecified", ip.is_unspecified), ("reserved", ip.is_reserved),
                          ("not globally routable", not ip.is_global)):
        if matches:
            return f"a {name} address"
    return None


def _allowed(ip: IPv4Address | IPv6Address, settings: NotificationSettings) -> bool:
    return settings.webhook_allow_private_targets or any(
        ip in net for net in settings.webhook_allowed_networks)


def _check_address(host: str, address: str, settings: NotificationSettings) -> None:
    ip = ip_address(address.split("%", 1)[0])  # a scoped IPv6 address: its zone dropped
    why = address_class(ip)
    if why is not None and not _allowed(ip, settings):
        shown = host if host == address else f"{host} resolves to {address},"
        raise TargetRefused("private_target", f"{shown} is {why}: webhooks go to public "
                            "addresses only (SUBS_NOTIFICATIONS__WEBHOOK_ALLOWED_NETWORKS "
                            "allows chosen networks)")


def _literal(host: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def check_url(url: str, settings: NotificationSettings, *, https_only: bool) -> httpx.URL:
    """The checks that need no DNS: http(s) with a host, https in production, no literal or
    localhost address that is refused. Raises TargetRefused."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as err:
        raise TargetRefused("invalid_url", f"not a URL: {err}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TargetRefused("invalid_url", "must be an http(s) URL with a host")
    if https_only and parsed.scheme != "https":
        raise TargetRefused("https_required", "webhooks must use https in production")
    host = parsed.host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        _check_address(host, "127.0.0.1", settings)
    elif _literal(host) is not None:
        _check_address(host, host, settings)
    return parsed


@dataclass(frozen=True)
class Pinned:
    """A checked target: the request goes to ``address``, for ``url``'s host."""

    url: httpx.URL
    address: str

    def request_url(self) -> httpx.URL:
        return self.url.copy_with(host=self.address)

    def headers(self) -> dict[str, str]:
        return {"Host": self.url.netloc.decode("ascii")}

    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.url.host} if self.url.scheme == "https" else {}


async def pin(url: str, settings: NotificationSettings, *, https_only: bool,
              resolver: Resolver = system_resolver) -> Pinned:
    """Resolve once and check every address; the first one is the one to connect to."""
    parsed = check_url(url, settings, https_only=https_only)
    host = parsed.host
    if _literal(host) is not None:
        return Pinned(parsed, host)
    async with asyncio.timeout(settings.webhook_timeout_seconds):  # DNS can hang too
        addresses = await resolver(host,
                                   parsed.port or (443 if parsed.scheme == "https" else 80))
    if not addresses:
        raise OSError(f"{host} has no address")  # DNS trouble: retried like any failure
    for address in addresses:
        _check_address(host, address, settings)
    return Pinned(parsed, addresses[0].split("%", 1)[0])


async def post(target: Pinned, body: bytes, headers: dict[str, str], timeout: float,
               tls: ssl.SSLContext | None = None) -> httpx.Response:
    """POST to the pinned address; no redirects, no proxies from the environment, and
    ``timeout`` for the whole exchange (httpx's own applies per read, which a trickling
    server could stretch)."""
    async with asyncio.timeout(timeout), httpx.AsyncClient(
            trust_env=False, follow_redirects=False, timeout=timeout,
            verify=tls if tls is not None else True) as client:
        return await client.post(target.request_url(), content=body,
                                 headers={**headers, **target.headers()},
                                 extensions=target.extensions())
