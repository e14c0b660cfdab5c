"""Input limits: request bodies (413) and requests per API key (429), both problem+json.

Bodies: a declared ``Content-Length`` above the limit is refused before anything is read; a
body without one (chunked) is counted while it streams in and refused as soon as it passes the
limit, so no request makes the process hold more than the limit. The Stripe webhook route has
its own, larger limit. Rate: a token bucket per API key, in this process (several API
processes each keep their own buckets: the deployment allows N x the rate); a small bucket
rather than a library because the answer needs the exact ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import ApiProblem, problem_response
from config.settings import ApiSettings

WEBHOOK_PATH = "/webhooks/stripe"


def too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, "payload-too-large", f"the request body is larger than the "
                      f"{limit} bytes this route accepts", code="body_too_large", limit=limit)


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` mid-stream. An HTTPException so FastAPI's body parsing passes
    it on (it turns other errors into a 400); the problem handler answers 413."""

    def __init__(self, limit: int) -> None:
        self.problem = too_large(limit)
        super().__init__(413, self.problem.detail)


class BodyLimit:
    """ASGI middleware: refuses bodies over the route's limit with 413."""

    def __init__(self, app: ASGIApp, settings: ApiSettings) -> None:
        self.app, self.settings = app, settings

    def limit_for(self, path: str) -> int:
        if path == WEBHOOK_PATH:
            return self.settings.max_webhook_body_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            response = problem_response(Request(scope), too_large(limit))
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """A token bucket per key: ``burst`` requests at once, refilled at ``rate`` a second."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def take(self, key: str) -> float:
        """0 if the request may go ahead (a token is spent), else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def rate_limited(wait: float) -> ApiProblem:
    seconds = max(1, math.ceil(wait))
    return ApiProblem(429, "rate-limited", f"too many requests with this API key; retry in "
                      f"{seconds} s", code="rate_limited", headers={"Retry-After": str(seconds)})
