"""A tiny real HTTP server on 127.0.0.1 that answers like a broken Stripe: a scripted status and
body, a dropped connection, or no answer before the client's timeout. The gateway is pointed at
it through ``api_base``, so the SDK, its HTTP client and our classification all run for real.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Reply:
    status: int = 200
    body: object = None  # dict -> JSON; str -> raw text; None -> a minimal object
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # seconds before answering (beyond the client timeout = timeout)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]] = field(default_factory=dict)


def stripe_error(status: int, message: str, type_: str = "invalid_request_error",
                 **extra) -> Reply:
    return Reply(status, {"error": {"type": type_, "message": message, **extra}})


def intent(status: str = "requires_confirmation", id_: str = "pi_fault") -> Reply:
    return Reply(200, {"id": id_, "object": "payment_intent", "status": status,
                       "amount": 100, "currency": "usd"})


class FaultServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(500, {"error": {"type": "api_error", "message": "boom"}})
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                server.seen.append(Seen(self.command, self.path, dict(self.headers),
                                        parse_qs(raw)))
                reply = server.replies.popleft() if server.replies else server.default
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                body = reply.body if reply.body is not None else {"id": "x", "object": "x"}
                data = (json.dumps(body) if isinstance(body, dict) else str(body)).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)
