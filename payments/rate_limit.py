"""A thread-safe token bucket in front of every Stripe request, one per process.

Stripe allows 25 requests/s in test mode and 100 live; a renewal burst (thousands of
subscriptions renewing at midnight, each charge = create + confirm) must queue here instead of
collecting 429s that would then be retried by Temporal in a thundering herd.

Callers *reserve* a slot under the lock and sleep outside it, so waiting threads do not block
each other and slots are handed out in arrival order. The bucket is process-wide (see
:func:`shared_bucket`) because Stripe limits per account, not per gateway object. Several
processes (workers and the API) share one budget through payments.shared_rate_limit instead
(``SUBS_STRIPE__RATE_LIMIT_SCOPE=deployment``, the default); this bucket is the
``process`` scope, for tests and single-process tools. The clock and the sleep function are
injectable so tests are deterministic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Bucket:
    """Anything that hands out request slots: ``reserve`` takes the next one and says how long
    to wait for it; ``acquire`` also waits (outside any lock or transaction)."""

    _sleep: Callable[[float], None]

    def reserve(self) -> float:
        raise NotImplementedError

    def acquire(self) -> float:
        """Block until the caller may send one request; return how long it waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait


class TokenBucket(Bucket):
    """``rate`` tokens per second, at most ``burst`` saved up.

    With the default ``burst=1`` requests are simply spaced ``1/rate`` apart, so any one-second
    window sees at most ``rate + 1`` requests (21 for the default 20/s, under Stripe's 25).
    """

    def __init__(self, rate: float, burst: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        if burst < 1:
            raise ValueError("burst must be >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token (possibly borrowed from the future); return the seconds to wait."""
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


_shared: dict[tuple[str, float, float], TokenBucket] = {}
_shared_lock = threading.Lock()


def shared_bucket(account: str, rate: float, burst: float = 1.0) -> TokenBucket:
    """The process-wide bucket for one Stripe account (API key) and rate."""
    key = (account, float(rate), float(burst))
    with _shared_lock:
        bucket = _shared.get(key)
        if bucket is None:
            bucket = _shared[key] = TokenBucket(rate, burst)
        return bucket
