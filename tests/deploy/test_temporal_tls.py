"""The SUBS_TEMPORAL__TLS__* settings reach the client: a real mutual-TLS handshake with a
Temporal frontend. The dev server speaks plain gRPC only, so a TLS-terminating proxy stands in
front of it (certificates made at test time, client certificates required, ALPN h2 like a real
frontend). Without a client certificate, with another CA, or with TLS against a plain server,
connecting fails instead of falling back to clear text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.service import TLSConfig

from config.settings import Settings, TemporalSettings, TemporalTLSSettings
from tests.support.temporal import dev_server_env
from tests.support.tls_certs import Pki, make_pki
from workflows.connection import connect, connect_options

pytestmark = pytest.mark.temporal

SERVER_NAME = "temporal.internal"  # not the address's host: the server_name setting must be used


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


@contextlib.asynccontextmanager
async def tls_frontend(upstream: str, pki: Pki) -> AsyncIterator[str]:
    """TLS (client certificate required) on a local port, plain gRPC to ``upstream``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.load_cert_chain(pki.server.cert, pki.server.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(["h2"])
    host, port = upstream.rsplit(":", 1)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


def tls_settings(address: str, pki: Pki, *, client: bool = True) -> Settings:
    tls = TemporalTLSSettings(server_ca_path=pki.ca, server_name=SERVER_NAME,
                              client_cert_path=pki.client.cert if client else None,
                              client_key_path=pki.client.key if client else None)
    return Settings(_env_file=None, temporal=TemporalSettings(address=address, tls=tls))


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), [SERVER_NAME])


def test_the_connect_options_carry_the_files_and_the_api_key(pki):
    settings = tls_settings("temporal:7233", pki)
    options = connect_options(settings)
    tls = options["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == pki.ca.read_bytes()
    assert tls.client_cert == pki.client.cert.read_bytes()
    assert tls.client_private_key == pki.client.key.read_bytes()
    assert tls.domain == SERVER_NAME and options["api_key"] is None

    plain = connect_options(Settings(_env_file=None))
    assert plain["tls"] is False and plain["api_key"] is None
    keyed = connect_options(Settings(_env_file=None, temporal=TemporalSettings(
        api_key=SecretStr("tmprl_key"))))
    assert keyed["tls"] is True and keyed["api_key"] == "tmprl_key"  # system CAs


def test_cert_without_key_is_refused(pki):
    with pytest.raises(ValueError, match="CLIENT_KEY_PATH"):
        TemporalTLSSettings(client_cert_path=pki.client.cert)


def test_tls_settings_come_from_the_environment(pki, monkeypatch):
    monkeypatch.setenv("SUBS_TEMPORAL__TLS__CLIENT_CERT_PATH", str(pki.client.cert))
    monkeypatch.setenv("SUBS_TEMPORAL__TLS__CLIENT_KEY_PATH", str(pki.client.key))
    monkeypatch.setenv("SUBS_TEMPORAL__TLS__SERVER_CA_PATH", str(pki.ca))
    monkeypatch.setenv("SUBS_TEMPORAL__TLS__SERVER_NAME", SERVER_NAME)
    monkeypatch.setenv("SUBS_TEMPORAL__API_KEY", "tmprl_env")
    temporal = Settings(_env_file=None).temporal
    assert temporal.tls.on and temporal.tls.client_cert_path == Path(str(pki.client.cert))
    assert temporal.api_key.get_secret_value() == "tmprl_env" and "tmprl_env" not in repr(temporal)


async def test_mutual_tls_handshake_with_a_real_frontend(pki, tmp_path):
    env = await dev_server_env()
    try:
        plain_address = env.client.service_client.config.target_host
        async with tls_frontend(plain_address, pki) as address:
            client = await connect(tls_settings(address, pki))
            assert await client.count_workflows() is not None  # a real call over mTLS

            # no client certificate: the frontend refuses the handshake
            with pytest.raises(RuntimeError, match="Failed client connect"):
                await asyncio.wait_for(connect(tls_settings(address, pki, client=False)), 30)
            # a server certificate from another CA is not trusted
            other = make_pki(tmp_path / "other", [SERVER_NAME])
            with pytest.raises(RuntimeError, match="Failed client connect"):
                await asyncio.wait_for(connect(tls_settings(address, other)), 30)
        # TLS configured, plain server: no silent fallback to clear text
        with pytest.raises(RuntimeError, match="Failed client connect"):
            await asyncio.wait_for(connect(tls_settings(plain_address, pki)), 30)
    finally:
        await env.shutdown()
