"""A real SMTP server (aiosmtpd) and a real HTTP receiver, each on a free local port."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    """What the SMTP server accepted; ``fail`` > 0 answers that many DATA commands 451."""

    port: int
    messages: list[Message] = field(default_factory=list)
    fail: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd
        with self.lock:
            if self.fail > 0:
                self.fail -= 1
                return "451 4.3.0 temporary failure, try again later"
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    @staticmethod
    def text(message: Message) -> str:
        return message.get_payload(decode=True).decode()

    def by_kind(self, kind: str) -> list[Message]:
        return [m for m in self.messages if m["X-Notification-Kind"] == kind]


@contextmanager
def serving(box: Mailbox, **options) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on the box's port, handled by the box; ``options`` go to
    aiosmtpd's Controller (TLS, authentication)."""
    controller = Controller(box, hostname="127.0.0.1", port=box.port, **options)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with serving(Mailbox(port=free_port())) as box:
        yield box


@dataclass
class Receiver:
    """Webhook deliveries received; ``statuses`` scripts the answers (then 200);
    ``redirect_to`` answers every POST with a 302 there instead."""

    url: str
    port: int = 0
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    redirect_to: str | None = None

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.deliveries]


@contextmanager
def running_receiver(host: str = "127.0.0.1", port: int = 0,
                     tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A real HTTP receiver on ``host`` (any 127.x address is local on Linux); with ``tls``
    (a server context) it speaks https."""
    if not port:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    state = Receiver(url=f"http://{host}:{port}/hooks", port=port)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                if state.redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", state.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = state.statuses.pop(0) if state.statuses else 200
                if status == 200:
                    state.deliveries.append((dict(self.headers), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    if tls is not None:
        state.url = f"https://{host}:{port}/hooks"
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as state:
        yield state
