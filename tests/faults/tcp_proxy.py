"""A TCP proxy that can make a real server go away and come back: a database outage (or any
TCP dependency's) without stopping the server other tests share.

Put it between a client and its server (e.g. a PostgreSQL URL pointing at ``proxy.port``):

    with TcpProxy("127.0.0.1", 5432) as proxy:
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{name}"
        ...
        proxy.refuse()   # open connections are cut, new ones get "connection refused"
        ...              # e.g. 30 s of outage during a renewal burst
        proxy.accept()   # the same port forwards again

``refuse()`` closes the listening socket, so a client sees exactly what it would see with the
server stopped (ECONNREFUSED at once, no hang), and cuts every open connection (pooled
connections break on their next use, as after a server restart). ``accept()`` listens on the
same port again. ``cut()`` only breaks the open connections. ``connections`` counts those
accepted since the start, so a test can tell that a client reconnected.

It runs its own event loop in a daemon thread: the switches are plain blocking calls that
return once they took effect, usable from sync tests, async tests and other threads alike.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from typing import Any


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host, self.port = host, port or _free_port(host)
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy",
                                        daemon=True)

    # Switches ------------------------------------------------------------------------------

    @property
    def accepting(self) -> bool:
        return self._server is not None

    def accept(self) -> None:
        """Listen and forward (again); a no-op if already listening."""
        self._run(self._listen())

    def refuse(self) -> None:
        """Stop listening (new connections are refused) and cut the open ones."""
        self._run(self._stop_listening())
        self.cut()

    def cut(self) -> None:
        """Break every open connection; keep listening if it was."""
        self._run(self._cut())

    # Lifecycle ------------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self.accept()
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self.refuse()
        self._run(self._finish_pipes())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Inside the proxy's loop --------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._pipe, self.host, self.port,
                                                      reuse_address=True)

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()  # not wait_closed(): it would wait for the connections cut next

    async def _finish_pipes(self) -> None:
        """Let the cut connections' copy tasks end, so none is destroyed while pending."""
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _cut(self) -> None:
        for writer in list(self._open):
            transport = writer.transport
            transport.abort()  # a reset, as from a server that went away
        self._open.clear()

    async def _pipe(self, client_r: asyncio.StreamReader,
                    client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.transport.abort()
            return
        self._open.update((client_w, server_w))
        try:
            await asyncio.gather(_copy(client_r, server_w), _copy(server_r, client_w))
        finally:
            self._open.difference_update((client_w, server_w))


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()  # one side ended: end the other (after what is buffered)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
