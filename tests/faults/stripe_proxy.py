"""A fault-injecting HTTP proxy in front of localstripe.

tests/payments/fault_server.py answers *instead of* Stripe (scripted replies, for the gateway's
error classification). This proxy sits *in front of* a real localstripe so that faults hit a
full renewal through the workflow: a fault can answer 500/429 without forwarding, forward the
request and lose the answer (the charge happened, the worker never hears of it), forward and
answer too late for the client's timeout, or hold a request until the test lets it go (to kill
a worker while its Stripe call is in flight). With ``max_per_second`` it also enforces a rate
limit as Stripe's own limiter does, with a token bucket: ``max_per_second`` tokens a second, at
most ``burst`` saved up; a request finding no token is answered 429 without being forwarded.
The saved tokens absorb requests that leave their sender in their slot but arrive bunched
(a process descheduled for half a second on a loaded machine), while a sender that goes over
the rate for longer than ``burst`` requests is refused as Stripe would refuse it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Fault:
    method: str  # "POST"
    path_prefix: str  # "/v1/payment_intents" matches creates and confirms; see path_suffix
    action: str  # "status" | "lose_response" | "late_response" | "hold"
    status: int = 500
    delay: float = 0.0  # late_response: seconds after forwarding, beyond the client timeout
    path_suffix: str = ""  # e.g. "/confirm"
    error: dict | None = None  # status: Stripe's error object (default: a generic api_error)
    seen: threading.Event = field(default_factory=threading.Event)  # hold: request arrived
    release: threading.Event = field(default_factory=threading.Event)  # hold: forward now
    forwarded: threading.Event = field(default_factory=threading.Event)  # Stripe answered us

    def matches(self, method: str, path: str) -> bool:
        path = path.split("?", 1)[0]
        return (method == self.method and path.startswith(self.path_prefix)
                and path.endswith(self.path_suffix))


class StripeProxy:
    """``faults`` is a queue: each one applies to the first request it matches, once."""

    def __init__(self, upstream: str, *, max_per_second: float | None = None,
                 burst: float | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, str]] = []  # (method, path, what happened)
        self._lock = threading.Lock()
        # Rate mode: a token bucket (default burst: one second's worth of requests).
        self.rate = max_per_second
        self.burst = (None if max_per_second is None
                      else float(burst if burst is not None else max_per_second))
        self._tokens = self.burst or 0.0
        self._refilled = time.monotonic()
        self.rate_limited = 0  # requests answered 429
        self.peak = 0  # most requests forwarded within one second (sliding window)
        self._window: deque[float] = deque()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if not proxy._admit():
                    proxy.log.append((self.command, self.path, "rate_limited"))
                    reply = {"error": {"type": "invalid_request_error", "code": "rate_limit",
                                       "message": "Too many requests hit the API too quickly."}}
                    self._answer(429, json.dumps(reply).encode(), {})
                    return
                fault = proxy._take(self.command, self.path)
                what = fault.action if fault else "forwarded"
                proxy.log.append((self.command, self.path, what))
                if fault and fault.action == "status":
                    reply = {"error": fault.error or {"type": "api_error",
                                                      "message": f"injected {fault.status}"}}
                    self._answer(fault.status, json.dumps(reply).encode(),
                                 {"Request-Id": f"req_injected_{len(proxy.log)}"})
                    return
                if fault and fault.action == "hold":
                    fault.seen.set()
                    fault.release.wait(30)
                status, data, headers = proxy._forward(self.command, self.path, body,
                                                       dict(self.headers))
                if fault:
                    fault.forwarded.set()
                if fault and fault.action == "lose_response":
                    self.close_connection = True
                    return
                if fault and fault.action == "late_response":
                    time.sleep(fault.delay)
                self._answer(status, data, headers)

            def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", headers.get("Content-Type",
                                                                 "application/json"))
                    if "Request-Id" in headers:
                        self.send_header("Request-Id", headers["Request-Id"])
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up or died

            do_GET = do_POST = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,),
                                        daemon=True)

    def _admit(self) -> bool:
        """Rate mode: is there a token for this request?"""
        if self.rate is None:
            return True
        now = time.monotonic()
        with self._lock:
            self._tokens = min(self.burst, self._tokens + (now - self._refilled) * self.rate)
            self._refilled = now
            if self._tokens < 1:
                self.rate_limited += 1
                return False
            self._tokens -= 1
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            self._window.append(now)
            self.peak = max(self.peak, len(self._window))
            return True

    def _take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    self.faults.remove(fault)
                    return fault
        return None

    def _forward(self, method: str, path: str, body: bytes | None,
                 headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        keep = {k: v for k, v in headers.items()
                if k.lower() in ("authorization", "content-type", "idempotency-key",
                                 "stripe-version")}
        request = urllib.request.Request(self.upstream + path, data=body, method=method,
                                         headers=keep)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, err.read(), dict(err.headers)

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def __enter__(self) -> StripeProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for fault in self.faults:
            fault.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
