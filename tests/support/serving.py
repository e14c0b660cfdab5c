"""An ASGI app over real HTTP for tests that need a real client on the other end (a browser,
the ``temporal`` CLI): uvicorn in the test's event loop, on a free local port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn


@asynccontextmanager
async def served(app) -> AsyncIterator[str]:
    """``app`` over real HTTP on 127.0.0.1 (uvicorn in this event loop, no lifespan: the test
    wires the app); yields its base URL. The socket listens before the server task starts,
    so the first request simply waits in the backlog."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning",
                                           access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
