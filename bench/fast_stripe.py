"""A benchmark-only Stripe stand-in: the few endpoints the product's customer setup and charge
path call (customers, payment methods, PaymentIntents create/confirm/retrieve/cancel, refunds),
each in constant time (dicts in memory), so a burst of 10,000 renewals measures the engine and
not the fake. localstripe, which the product's tests use, keeps every object and slows as its
store grows; it stays the reference for behaviour. Never use this outside bench/.

What it adds for the benchmark: Idempotency-Key replay (same key, same answer, as Stripe), an
optional rate limit (``--limit R``: a token bucket like Stripe's limiter, R tokens a second
and at most R saved up, one per request; a request finding none is answered 429
``rate_limit_error``), and counters at ``GET /bench/stats``:
requests per wall-clock second, statuses, and succeeded intents per ``metadata
[idempotency_key]`` for the double-charge check.

    python -m bench.fast_stripe PORT [--limit R]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import IO
from urllib.parse import parse_qsl, urlsplit

from devstack.processes import stop

DECLINED_CARDS = {"4000000000000002": "generic_decline", "4000000000009995": "insufficient_funds"}
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_bench{next(_ids):09d}"


def _form(body: bytes) -> dict:
    """Stripe's form encoding (``metadata[key]=v``, ``card[number]=...``) as nested dicts."""
    out: dict = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class Store:
    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.tokens, self.refilled = limit or 0.0, time.monotonic()
        self.objects: dict[str, dict] = {}
        self.replies: dict[tuple[str, str], tuple[int, dict]] = {}  # (method, key) -> answer
        self.per_second: Counter[int] = Counter()
        self.statuses: Counter[int] = Counter()
        self.succeeded_per_key: Counter[str] = Counter()

    def handle(self, method: str, path: str, query: str, body: bytes,
               idempotency_key: str | None) -> tuple[int, dict]:
        if path == "/bench/stats":
            return 200, self.stats()
        if path == "/bench/limit":  # POST /bench/limit?value=R (or no value: none)
            value = dict(parse_qsl(query)).get("value")
            self.limit = float(value) if value else None
            self.tokens, self.refilled = self.limit or 0.0, time.monotonic()
            return 200, {"limit": self.limit}
        second = int(time.time())  # requests answered (not 429) per wall-clock second
        if self.limit is not None and not self._token():
            status, reply = 429, _error("rate_limit_error", "Too many requests", code="rate_limit")
        elif idempotency_key and (method, idempotency_key) in self.replies:
            status, reply = self.replies[(method, idempotency_key)]
        else:
            status, reply = self.route(method, path, query, _form(body) if body else {})
            if idempotency_key and method == "POST" and status < 500:
                self.replies[(method, idempotency_key)] = (status, reply)
        if status != 429:
            self.per_second[second] += 1
        self.statuses[status] += 1
        return status, reply

    def _token(self) -> bool:
        """Take a token if there is one. The saved-up second absorbs requests that left their
        sender in their slot but arrive bunched (a process descheduled on a loaded machine:
        with a count per wall-clock second, a limiter spacing 24/s met six 429s at 25/s in
        one N = 1,000 run), never a sustained excess."""
        now = time.monotonic()
        self.tokens = min(self.limit, self.tokens + (now - self.refilled) * self.limit)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def route(self, method: str, path: str, query: str, form: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        kind = parts[0] if parts else ""
        if method == "GET" and len(parts) == 1:
            return 200, self.list(kind, dict(parse_qsl(query)))
        if method == "POST" and len(parts) == 1:
            return self.create(kind, form)
        obj = self.objects.get(parts[1]) if len(parts) > 1 else None
        if obj is None:
            return 404, _error("invalid_request_error", f"No such object: {path}",
                               code="resource_missing")
        if method == "GET":
            return 200, obj
        action = parts[2] if len(parts) > 2 else "update"
        return self.act(obj, action, form)

    def create(self, kind: str, form: dict) -> tuple[int, dict]:
        if kind == "customers":
            obj = {"id": _id("cus"), "object": "customer", "email": form.get("email"),
                   "name": form.get("name"), "metadata": form.get("metadata", {}),
                   "invoice_settings": {"default_payment_method": None}}
        elif kind == "payment_methods":
            card = form.get("card", {})
            obj = {"id": _id("pm"), "object": "payment_method", "type": "card",
                   "customer": None, "card": {"last4": card.get("number", "")[-4:],
                                              "brand": "visa",
                                              "exp_month": int(card.get("exp_month", 12)),
                                              "exp_year": int(card.get("exp_year", 2034))},
                   "_number": card.get("number", "")}
        elif kind == "payment_intents":
            obj = {"id": _id("pi"), "object": "payment_intent",
                   "amount": int(form["amount"]), "currency": form["currency"],
                   "customer": form.get("customer"), "payment_method": form.get("payment_method"),
                   "metadata": form.get("metadata", {}), "status": "requires_confirmation",
                   "last_payment_error": None}
        elif kind == "refunds":
            pi = self.objects.get(form.get("payment_intent", ""))
            if pi is None:
                return 404, _error("invalid_request_error", "No such payment_intent",
                                   code="resource_missing")
            obj = {"id": _id("re"), "object": "refund", "status": "succeeded",
                   "amount": int(form.get("amount") or pi["amount"]),
                   "payment_intent": pi["id"], "metadata": form.get("metadata", {})}
        else:
            return 404, _error("invalid_request_error", f"Unrecognized request URL: {kind}")
        self.objects[obj["id"]] = obj
        return 200, obj

    def act(self, obj: dict, action: str, form: dict) -> tuple[int, dict]:
        if action == "update":
            for key, value in form.items():
                if isinstance(value, dict) and isinstance(obj.get(key), dict):
                    obj[key].update(value)
                else:
                    obj[key] = value
            return 200, obj
        if action == "attach":
            obj["customer"] = form.get("customer")
            return 200, obj
        if action == "cancel":
            if obj["status"] == "succeeded":
                return 400, _error("invalid_request_error", "already succeeded",
                                   code="payment_intent_unexpected_state")
            obj["status"] = "canceled"
            return 200, obj
        if action == "confirm":
            if obj["status"] != "requires_confirmation":
                return 400, _error("invalid_request_error", f"status is {obj['status']}",
                                   code="payment_intent_unexpected_state")
            pm = self.objects.get(obj.get("payment_method") or "", {})
            decline = DECLINED_CARDS.get(pm.get("_number", ""))
            if decline:
                obj["status"] = "requires_payment_method"
                obj["last_payment_error"] = {"code": "card_declined", "decline_code": decline,
                                             "message": "Your card was declined."}
                return 402, _error("card_error", "Your card was declined.",
                                   code="card_declined", decline_code=decline,
                                   payment_intent=obj)
            obj["status"] = "succeeded"
            self.succeeded_per_key[obj["metadata"].get("idempotency_key", "")] += 1
            return 200, obj
        return 404, _error("invalid_request_error", f"Unrecognized action {action}")

    def list(self, kind: str, query: dict) -> dict:
        data = [o for o in self.objects.values() if o["object"] == kind.rstrip("s")
                and (kind != "refunds" or o["payment_intent"] == query.get("payment_intent"))]
        return {"object": "list", "data": data[:int(query.get("limit", 10))], "has_more": False,
                "url": f"/v1/{kind}"}

    def stats(self) -> dict:
        return {"per_second": {str(k): v for k, v in sorted(self.per_second.items())},
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "succeeded_per_key": dict(self.succeeded_per_key)}


def _error(kind: str, message: str, **extra) -> dict:
    return {"error": {"type": kind, "message": message, **extra}}


async def _serve_connection(store: Store, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 with keep-alive, only what the Stripe SDK (requests) sends."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
            url = urlsplit(target)
            status, reply = store.handle(method, url.path, url.query, body,
                                         headers.get("idempotency-key"))
            payload = json.dumps({k: v for k, v in reply.items() if not k.startswith("_")}
                                 if reply.get("object") == "payment_method" else reply).encode()
            writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nRequest-Id: req_bench\r\n\r\n"
                         % (status, len(payload)) + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(port: int, limit: float | None) -> None:
    store = Store(limit)
    server = await asyncio.start_server(lambda r, w: _serve_connection(store, r, w),
                                        "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


@dataclass
class FastStripe:
    """The stand-in as a subprocess (its CPU and memory are read from /proc like the others)."""

    url: str
    process: subprocess.Popen
    log: IO[bytes]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/bench/stats", timeout=30) as resp:
            return json.load(resp)

    def set_limit(self, limit: float | None) -> None:
        query = "" if limit is None else f"?value={limit}"
        urllib.request.urlopen(urllib.request.Request(
            f"{self.url}/bench/limit{query}", method="POST"), timeout=30).close()

    def stop(self) -> str:
        stop(self.process, timeout=5)
        if not self.log.closed:
            self.log.close()
        return ""


def start_fast_stripe(limit: float | None = None, timeout: float = 20.0) -> FastStripe:
    from bench.stack import free_port

    port = free_port()
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "bench.fast_stripe", str(port)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    server = FastStripe(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            server.stats()
            return server
        except OSError:
            time.sleep(0.05)
    log.seek(0)
    tail = log.read()[-2000:].decode(errors="replace")
    server.stop()
    raise RuntimeError(f"fast Stripe stand-in did not start: {tail}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.fast_stripe")
    parser.add_argument("port", type=int)
    parser.add_argument("--limit", type=float, default=None,
                        help="requests per wall-clock second before answering 429")
    args = parser.parse_args()
    try:
        asyncio.run(_main(args.port, args.limit))
    except KeyboardInterrupt:
        pass
