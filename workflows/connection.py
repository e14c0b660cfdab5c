"""One way to connect to Temporal, with the data converter every process must share.

It lives with the workflows (below the API, the CLI and the workers, which all connect) so
none of those processes imports another's package; workers.client adds the worker's runtime.
Every client, worker, test environment and replayer takes its converter from
``data_converter``: the pydantic converter, plus the AES-GCM payload codec when keys are set
(README "Deployment security"), so a process can never write payloads another cannot read.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from config.settings import CodecSettings, Settings, TemporalSettings
from workflows.codec import AesGcmCodec


def payload_codec(codec: CodecSettings | None) -> AesGcmCodec | None:
    if codec is None or not codec.on:
        return None
    assert codec.current_key_id is not None  # CodecSettings validates it
    return AesGcmCodec.from_base64({k: v.get_secret_value() for k, v in codec.keys.items()},
                                   codec.current_key_id)


def data_converter(codec: CodecSettings | None = None) -> DataConverter:
    """Pydantic payloads, encrypted when ``codec`` has keys; unchanged otherwise. Encrypted,
    failure messages and stack traces go into the encrypted payload too (they may quote ids)."""
    encrypt = payload_codec(codec)
    if encrypt is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=encrypt,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


def tls_config(temporal: TemporalSettings) -> TLSConfig | bool:
    """The files are read here, at connect time, so a renewed certificate needs a restart
    only, not a new image. An API key alone turns on TLS with the system's CAs."""
    tls = temporal.tls
    if not tls.on:
        return temporal.api_key is not None

    def read(path: Any) -> bytes | None:
        return None if path is None else path.read_bytes()

    return TLSConfig(server_root_ca_cert=read(tls.server_ca_path), domain=tls.server_name,
                     client_cert=read(tls.client_cert_path),
                     client_private_key=read(tls.client_key_path))


def connect_options(settings: Settings) -> dict[str, Any]:
    """Everything ``Client.connect`` is given besides the address and the runtime."""
    temporal = settings.temporal
    return {
        "namespace": temporal.namespace,
        "data_converter": data_converter(settings.codec),
        "tls": tls_config(temporal),
        "api_key": temporal.api_key.get_secret_value() if temporal.api_key else None,
    }


if TYPE_CHECKING:  # the CLI connects without loading the tracing libraries
    from workflows.telemetry import Tracing


async def connect(settings: Settings, runtime: Runtime | None = None,
                  tracing: Tracing | None = None) -> Client:
    """With ``tracing``, its interceptor traces the client's calls and the workers built on
    the client (workflows and activities)."""
    return await Client.connect(settings.temporal.address, runtime=runtime,
                                interceptors=[tracing.interceptor] if tracing else [],
                                **connect_options(settings))
