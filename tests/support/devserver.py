"""``temporal server start-dev`` as `make dev` runs it (a database file, the search attributes
registered), on free ports, as a process a test can kill and restart; for tests that need real
visibility (list filters, continue-as-new chains) or a server restart."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from temporalio.client import Client

from devstack.__main__ import SEARCH_ATTRIBUTES
from tests.fakes_stripe import free_port
from tests.support import processes
from tests.support.temporal import forwarding_runtime, venv_binary
from workflows.connection import data_converter


class DevServer:
    """``temporal server start-dev`` on fixed ports and a database file, like `make dev`."""

    def __init__(self, db_file: Path) -> None:
        self.db_file = db_file
        self.port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [venv_binary("temporal"), "server", "start-dev", "--db-filename", str(self.db_file),
               "--ip", "127.0.0.1", "--port", str(self.port), "--http-port", str(self.http_port),
               "--metrics-port", str(self.metrics_port), "--headless", "--log-level", "error"]
        for name, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        processes.stop(self.proc)

    async def connect(self, timeout: float = 20.0) -> Client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                client = await Client.connect(self.address, data_converter=data_converter(),
                                              runtime=forwarding_runtime())
                await client.count_workflows()  # the frontend and the database answer
                return client
            except Exception:  # noqa: BLE001 - still starting
                if loop.time() > deadline or (self.proc and self.proc.poll() is not None):
                    raise
                await asyncio.sleep(0.2)
