"""The `make dev` stack for tests, on free ports: the Temporal dev server, the worker and the
HTTP API as processes (as `python -m devstack` starts them), the session's localstripe, an SMTP
sink and a SQLite file. ``env`` is what a `subs` command needs to talk to it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.client import Client

from config.settings import Settings
from devstack.processes import wait_for_port
from store.migrate import upgrade
from tests.fakes_stripe import free_port
from tests.faults.helpers import WorkerProcess, server_settings, worker_env
from tests.support import processes
from tests.support.devserver import DevServer


@dataclass
class LocalStack:
    client: Client
    settings: Settings
    env: dict[str, str]
    api_url: str


async def _wait_for_api(url: str, api: WorkerProcess, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while loop.time() < deadline:
            assert api.proc is not None and api.proc.poll() is None, api.output()
            try:
                await http.get("/v1/plans")  # 401 without a key: it answers
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise AssertionError(f"the API did not answer within {timeout:g} s: {api.output()}")


@asynccontextmanager
async def local_stack(tmp: Path, localstripe_url: str, **extra_env: str
                      ) -> AsyncIterator[LocalStack]:
    """``extra_env`` (SUBS_*) goes to the worker, the API and ``env``, e.g. a plans file."""
    database_url = f"sqlite:///{tmp / 'subscriptions.db'}"
    upgrade(database_url)
    server = DevServer(tmp / "temporal.db")
    smtp_port, api_port = free_port(), free_port()
    smtp = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                             f"127.0.0.1:{smtp_port}", "-c", "aiosmtpd.handlers.Sink"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: list[WorkerProcess] = []
    server.start()
    try:
        client = await server.connect()
        settings = server_settings(server.address, database_url, localstripe_url, "dev")
        env = worker_env(settings, SUBS_API_HOST="127.0.0.1", SUBS_API_PORT=str(api_port),
                         SUBS_NOTIFICATIONS__SMTP_PORT=str(smtp_port),
                         SUBS_NOTIFICATIONS__POLL_INTERVAL_SECONDS="0.2",
                         SUBS_RECONCILE__INTERVAL="PT0S", **extra_env)
        wait_for_port(smtp_port, 30)
        worker, api = WorkerProcess(env).start(), WorkerProcess(env, module="api").start()
        started += [worker, api]
        api_url = f"http://127.0.0.1:{api_port}"
        await _wait_for_api(api_url, api)
        yield LocalStack(client, settings, env, api_url)
    finally:
        for process in started:
            process.stop()
        server.stop()
        processes.stop(smtp)
