"""One way to connect to Temporal, with the pydantic data converter every process must share.

It lives with the workflows (below the API, the CLI and the workers, which all connect) so
none of those processes imports another's package; workers.client adds the worker's runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from config.settings import Settings

if TYPE_CHECKING:  # the CLI connects without loading the tracing libraries
    from workflows.telemetry import Tracing


async def connect(settings: Settings, runtime: Runtime | None = None,
                  tracing: Tracing | None = None) -> Client:
    """With ``tracing``, its interceptor traces the client's calls and the workers built on
    the client (workflows and activities)."""
    return await Client.connect(
        settings.temporal.address,
        namespace=settings.temporal.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        interceptors=[tracing.interceptor] if tracing else [],
    )
