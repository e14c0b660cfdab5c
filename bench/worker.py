"""``serve(workflows)``: a benchmark's own worker process, built exactly like the project's
(``workers.main.build_worker``: runner, activities, executor size, Temporal runtime) but running
other workflows, so a comparison measures the workflows and not the worker configuration."""

from __future__ import annotations

import asyncio
import signal


async def serve(workflows: list[type]) -> None:
    from config.settings import get_settings
    from workers.client import worker_runtime
    from workflows.connection import connect
    from workers.main import build_worker

    settings = get_settings()
    client = await connect(settings, worker_runtime(settings))
    worker = build_worker(client, settings, workflows=workflows)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()
